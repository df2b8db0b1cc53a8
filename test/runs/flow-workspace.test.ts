/**
 * A run's workspace on the machine, prepared by the agent as root for the run's OS account: a
 * process of that account (its attended session, or one an earlier flow left behind) that
 * knows the run id and plants links in the workspace while it is being filled must not turn
 * root's writes or ownership changes onto files elsewhere; and the workspace is gone after the
 * run, even where the flow made its directories read-only. A run cancelled before its flow
 * started never starts it.
 *
 * The base the workspaces are made in must be the agent's alone: one another account made
 * first, a link in its place, or one others may write in refuses every run with
 * `WorkDirUnsafe`, said once in the log, and nothing is written in it. The default is in a
 * directory only root can write to.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AGENT_DEFAULTS, resolveAgentConfig } from '../../packages/agent/src/config/agent-config.ts'
import { createScriptExecutor } from '../../packages/agent/src/runs/flow-executor.ts'
import { accountInfo } from '../../packages/agent/src/runs/run-manager.ts'
import { createRecordingLogger } from '../agent/recording-logger.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import { runShellFlow } from '../support/shell-flows.ts'

describe('the default base of run workspaces', () => {
  it('is, for a root agent, in a directory only root can write to; else in the state directory', () => {
    const asRoot = resolveAgentConfig({}, {}, 0)
    expect(asRoot.workDir).toBe(AGENT_DEFAULTS.workDir)
    const above = statSync(dirname(asRoot.workDir))
    expect(above.uid).toBe(0)
    expect(above.mode & 0o022).toBe(0)
    expect(resolveAgentConfig({ DESKLINK_AGENT_STATE_DIR: '/srv/agent' }, {}, 1000).workDir).toBe(
      '/srv/agent/workspaces',
    )
  })
})

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
  describe("whose base is not the agent's alone", () => {
    /** A directory like /var/tmp: anyone may make something in it, and keeps it. */
    let shared: string
    beforeAll(() => {
      shared = join(base, 'shared')
      mkdirSync(shared)
      chmodSync(shared, 0o1777)
    })
    /** Runs `command` as the test account. */
    const asAccount = (command: string[]) => {
      const account = theAccount()
      execFileSync('setpriv', [
        `--reuid=${account.uid}`,
        `--regid=${account.gid}`,
        '--clear-groups',
        ...command,
      ])
    }
    /** Runs a flow that leaves a marker, with the base `workDir`; answers whether it ran. */
    const runWith = async (
      workDir: string,
      executor = createScriptExecutor({ workDir, logger: createRecordingLogger() }),
    ) => {
      const marker = join(shared, `ran-${randomUUID()}`)
      const result = await runShellFlow(executor, user.name, {
        runId: randomUUID(),
        script: `touch "${marker}"\n`,
      })
      return { result, ran: existsSync(marker) }
    }

    it('refuses every run while another account owns it, says so once, and writes nothing in it', async () => {
      const precreated = join(shared, 'runs')
      asAccount(['mkdir', '-m', '0755', precreated])
      const logger = createRecordingLogger()
      const executor = createScriptExecutor({ workDir: precreated, logger })
      for (let attempt = 0; attempt < 2; attempt++) {
        const { result, ran } = await runWith(precreated, executor)
        expect(result).toMatchObject({ status: 'Failed', error: { code: 'WorkDirUnsafe' } })
        expect(result.error?.message).toContain(`${precreated} belongs to uid ${user.uid}`)
        expect(result.error?.message).toContain('Remove it')
        expect(ran).toBe(false)
      }
      expect(readdirSync(precreated)).toEqual([])
      expect(statSync(precreated)).toMatchObject({ uid: user.uid })
      expect(statSync(precreated).mode & 0o777).toBe(0o755)
      const told = logger.entries.filter((entry) => entry.level === 'error')
      expect(told).toHaveLength(1)
      expect(told[0]?.fields).toMatchObject({ code: 'WorkDirUnsafe', workDir: precreated })
      // Removed, as the message says: the agent makes it anew, its own, and runs go.
      rmSync(precreated, { recursive: true })
      expect(await runWith(precreated, executor)).toMatchObject({
        result: { status: 'Succeeded' },
        ran: true,
      })
      expect(statSync(precreated)).toMatchObject({ uid: 0 })
    })

    it('refuses a link in its place, and writes nothing where the link points', async () => {
      const target = join(shared, `target-${randomUUID()}`)
      const link = join(shared, `link-${randomUUID()}`)
      asAccount(['mkdir', '-m', '0777', target])
      asAccount(['ln', '-s', target, link])
      const { result, ran } = await runWith(link)
      expect(result).toMatchObject({ status: 'Failed', error: { code: 'WorkDirUnsafe' } })
      expect(result.error?.message).toContain('is a symbolic link')
      expect(ran).toBe(false)
      expect(readdirSync(target)).toEqual([])
      expect(statSync(target).mode & 0o777).toBe(0o777)
    })

    it('refuses one of its own that others may write in', async () => {
      const open = join(shared, `open-${randomUUID()}`)
      mkdirSync(open)
      chmodSync(open, 0o777)
      const { result, ran } = await runWith(open)
      expect(result).toMatchObject({ status: 'Failed', error: { code: 'WorkDirUnsafe' } })
      expect(result.error?.message).toContain('may be written by its group or others (mode 777)')
      expect(ran).toBe(false)
    })
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
