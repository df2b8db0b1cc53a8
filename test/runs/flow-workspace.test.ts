/**
 * A run's workspace on the machine, prepared by the agent as root for the run's OS account: a
 * process of that account (its attended session, or one an earlier flow left behind) that
 * knows the run id and plants links in the workspace while it is being filled must not turn
 * root's writes or ownership changes onto files elsewhere; and the workspace is gone after the
 * run, even where the flow made its directories read-only. A run cancelled before its flow
 * started never starts it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createScriptExecutor } from '../../packages/agent/src/runs/flow-executor.ts'
import { accountInfo } from '../../packages/agent/src/runs/run-manager.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import { runShellFlow } from '../support/shell-flows.ts'

const reason = skipReason(['useradd', 'setpriv', 'find'])
if (reason) process.stderr.write(`flow workspace suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)("a run's workspace on the machine", () => {
  let user: OsUser
  let base: string
  let workDir: string
  let racer: ChildProcess | undefined

  beforeAll(() => {
    user = createOsUser('dlws')
    base = mkdtempSync(join(tmpdir(), 'desklink-workspace-'))
    // Run accounts must pass through to the work directory.
    chmodSync(base, 0o711)
    workDir = join(base, 'runs')
  })
  afterAll(() => {
    racer?.kill('SIGKILL')
    user?.remove()
    if (base) rmSync(base, { recursive: true, force: true })
  })

  /** The test account, as the agent reads it. */
  const theAccount = () => {
    const account = accountInfo(user.name)
    if (!account) throw new Error('the test account is missing')
    return account
  }
  /** Runs a shell flow of `main.sh` (`script`) and `files` as the test account, with `inputs`. */
  const runFlow = (
    runId: string,
    script: string,
    inputs: Record<string, unknown> = {},
    files: { path: string; executable: boolean; contentBase64: string }[] = [],
    signal = new AbortController().signal,
  ) =>
    runShellFlow(createScriptExecutor({ workDir }), user.name, {
      runId,
      script,
      inputs,
      files,
      signal,
    })

  it('does not follow links the account plants while the workspace is being filled', async () => {
    const account = theAccount()
    const victim = join(base, 'root-owned.txt')
    writeFileSync(victim, 'root-owned original\n', { mode: 0o644 })
    const runId = randomUUID()
    const workspace = join(workDir, runId)
    // As the account: link the inputs file, and a package file, to root's file, as soon as the
    // workspace lets it, over and over.
    racer = spawn(
      'setpriv',
      [
        `--reuid=${account.uid}`,
        `--regid=${account.gid}`,
        '--clear-groups',
        '/bin/sh',
        '-c',
        `while :; do ln -s ${victim} ${workspace}/.desklink-inputs.json; ln -s ${victim} ${workspace}/f1999.txt; done 2>/dev/null`,
      ],
      { stdio: 'ignore' },
    )
    // Many files: the workspace takes a while to fill, which gives the account its chance.
    const files = Array.from({ length: 2000 }, (_, i) => ({
      path: `f${String(i).padStart(4, '0')}.txt`,
      executable: false,
      contentBase64: Buffer.alloc(1024, 65).toString('base64'),
    }))
    const result = await runFlow(runId, 'exit 0\n', { planted: 'by-the-account' }, files).catch(
      (error: unknown) => error,
    )
    racer.kill('SIGKILL')
    expect(statSync(victim).uid).toBe(0)
    expect(readFileSync(victim, 'utf8')).toBe('root-owned original\n')
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
  })

  it('is gone after the run, even with directories the flow made read-only', async () => {
    const runId = randomUUID()
    const result = await runFlow(runId, 'mkdir -p ro/deep && touch ro/deep/f && chmod -R a-w ro\n')
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
    expect(existsSync(join(workDir, runId))).toBe(false)
  })
  it('never starts a flow whose run was cancelled while its workspace was being made', async () => {
    const runId = randomUUID()
    const marker = join(base, `started-${runId}`)
    const cancelled = new AbortController()
    cancelled.abort()
    const result = await runFlow(runId, `touch "${marker}"\n`, {}, [], cancelled.signal)
    expect(result).toMatchObject({ status: 'Cancelled', error: null })
    expect(existsSync(marker)).toBe(false)
    expect(existsSync(join(workDir, runId))).toBe(false)
  })
})
