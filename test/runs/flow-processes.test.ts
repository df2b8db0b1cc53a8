/**
 * A run's processes on the machine: held in a cgroup of the run's, so that a process the flow
 * detached from its process group (`setsid`) ends with the run, whether the flow ended by
 * itself or was cancelled, and whatever a run left running goes when an agent restarted during
 * it discards the run. Without a cgroup, such a process outlives the run: the control case.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createScriptExecutor } from '../../packages/agent/src/runs/flow-executor.ts'
import { detectRunCgroups, type RunCgroups } from '../../packages/agent/src/runs/run-cgroups.ts'
import { accountInfo } from '../../packages/agent/src/runs/run-manager.ts'
import { eventually } from '../support/eventually.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import { runShellFlow } from '../support/shell-flows.ts'

const testCgroups = `desklink-test-${process.pid}`
const detected =
  skipReason(['useradd', 'setpriv', 'setsid']) ?? detectRunCgroups('a-machine', testCgroups)
const reason =
  typeof detected === 'string' ? detected : (detected as { unavailable?: string }).unavailable
if (reason) process.stderr.write(`flow processes suite skipped: ${reason}\n`)

/** A detached `sleep`, in a session of its own; its pid and session go to the outputs. */
const DETACH = `setsid sleep 300 </dev/null >/dev/null 2>&1 &
pid=$!
while [ "$(cut -d' ' -f6 /proc/$pid/stat)" = "$(cut -d' ' -f6 /proc/$$/stat)" ]; do sleep 0.01; done
printf '{"pid": %s, "session": %s, "flowSession": %s}' "$pid" "$(cut -d' ' -f6 /proc/$pid/stat)" "$(cut -d' ' -f6 /proc/$$/stat)" > "$DESKLINK_OUTPUTS"
`
/** The outputs DETACH writes, declared: the run reports no others. */
const DETACH_OUTPUTS = ['pid', 'session', 'flowSession'].map((name) => ({
  name,
  type: 'number' as const,
  required: false,
  sensitive: false,
  description: '',
}))

/** Whether `pid` is a live `sleep` (not gone, nor a zombie awaiting its parent). */
function sleeping(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.includes('(sleep)') && !/\) Z /.test(stat)
  } catch {
    return false
  }
}

describe.skipIf(reason !== undefined)("a run's processes on the machine", () => {
  const cgroups = detected as RunCgroups
  let user: OsUser
  let base: string
  const strays: number[] = []

  beforeAll(() => {
    user = createOsUser('dlpr')
    base = mkdtempSync(join(tmpdir(), 'desklink-processes-'))
    chmodSync(base, 0o711)
  })
  afterAll(() => {
    for (const pid of strays) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Gone.
      }
    }
    user?.remove()
    if (base) rmSync(base, { recursive: true, force: true })
    if (cgroups) {
      rmdirSync(cgroups.base)
      rmdirSync(dirname(cgroups.base))
    }
  })

  const runFlow = (
    runId: string,
    script: string,
    options: { cgroups?: RunCgroups; signal?: AbortSignal; timeoutSeconds?: number } = {},
  ) =>
    runShellFlow(
      createScriptExecutor({
        workDir: join(base, 'runs'),
        ...(options.cgroups && { cgroups: options.cgroups }),
      }),
      user.name,
      { runId, script, outputs: DETACH_OUTPUTS, ...options },
    )

  it('ends a process the flow detached from its process group when the flow ends', async () => {
    const runId = randomUUID()
    const result = await runFlow(runId, DETACH, { cgroups })
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
    const { pid, session, flowSession } = result.outputs as Record<string, number>
    strays.push(pid)
    expect(session).not.toBe(flowSession)
    expect(sleeping(pid)).toBe(false)
    expect(existsSync(join(cgroups.base, runId))).toBe(false)
  })

  it('lets such a process outlive the run without a cgroup (the process group alone)', async () => {
    const result = await runFlow(randomUUID(), DETACH)
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
    const { pid } = result.outputs as Record<string, number>
    strays.push(pid)
    expect(sleeping(pid)).toBe(true)
  })

  /** The process a still-running flow of run `runId` detached, once its outputs say which. */
  const detachedBy = async (runId: string) => {
    const outputs = join(base, 'runs', runId, '.desklink-outputs.json')
    const outputsWritten = () => existsSync(outputs) && readFileSync(outputs, 'utf8').endsWith('}')
    await eventually(outputsWritten, 'the flow detached its process')
    const written = JSON.parse(readFileSync(outputs, 'utf8')) as { pid: number }
    strays.push(written.pid)
    return written
  }

  it('ends the flow and what it detached when the run is cancelled', async () => {
    const runId = randomUUID()
    const cancel = new AbortController()
    const running = runFlow(runId, `${DETACH}sleep 300\n`, { cgroups, signal: cancel.signal })
    const written = await detachedBy(runId)
    expect(sleeping(written.pid)).toBe(true)
    cancel.abort()
    expect(await running).toMatchObject({ status: 'Cancelled' })
    expect(sleeping(written.pid)).toBe(false)
    expect(existsSync(join(cgroups.base, runId))).toBe(false)
  })

  it('ends the flow and what it detached when the run times out', async () => {
    const runId = randomUUID()
    const running = runFlow(runId, `${DETACH}sleep 300\n`, { cgroups, timeoutSeconds: 1 })
    const written = await detachedBy(runId)
    expect(await running).toMatchObject({ error: { code: 'DesktopFlowsActionTimeout' } })
    expect(sleeping(written.pid)).toBe(false)
    expect(existsSync(join(cgroups.base, runId))).toBe(false)
  })

  /** A process of run `runId`'s, in its cgroup, as an agent that stopped had started it. */
  const leftRunning = async (runId: string) => {
    const account = accountInfo(user.name)
    if (!account) throw new Error('the test account is missing')
    await cgroups.make(runId)
    const argv = cgroups.command(runId, [
      'setpriv',
      `--reuid=${account.uid}`,
      `--regid=${account.gid}`,
      '--clear-groups',
      'setsid',
      'sleep',
      '300',
    ])
    // Not a group leader, so `setsid` becomes the `sleep` itself rather than forking it.
    const left = spawn(argv[0], argv.slice(1), { stdio: 'ignore' })
    left.unref()
    const pid = left.pid ?? 0
    strays.push(pid)
    await eventually(() => sleeping(pid), 'the left process runs')
    return pid
  }

  it('ends, when the agent starts again, what runs of its last start left running', async () => {
    const runIds = [randomUUID(), randomUUID()]
    const pids = await Promise.all(runIds.map(leftRunning))
    expect((await cgroups.endLeftovers()).sort()).toEqual([...runIds].sort())
    for (const pid of pids) expect(sleeping(pid)).toBe(false)
    for (const runId of runIds) expect(existsSync(join(cgroups.base, runId))).toBe(false)
  })

  it('ends what a run left running when an agent restarted during it discards the run', async () => {
    const runId = randomUUID()
    const account = accountInfo(user.name)
    if (!account) throw new Error('the test account is missing')
    const pid = await leftRunning(runId)
    await createScriptExecutor({ workDir: join(base, 'runs'), cgroups }).discard(runId, account)
    expect(sleeping(pid)).toBe(false)
    expect(existsSync(join(cgroups.base, runId))).toBe(false)
  })
})
