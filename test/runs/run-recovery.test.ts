/**
 * Runs survive crashes without starting twice: the server killed with SIGKILL mid-run (the run
 * completes on the machine, is reported after the restart and recorded once), and the agent
 * killed mid-run (the run fails with RunLeaseExpired once its lease runs out; a restarted agent
 * clears its journal and the run's workspace without running anything again). A callback owed by a run that ended is
 * made by the restarted server when the one killed had not made it.
 */
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AGENT_DEFAULTS } from '../../packages/agent/src/config/agent-config.ts'
import { assertBuilt, type LongRunning, spawnDesklink, waitFor } from '../support/cli-process.ts'
import { createTestCa, type TestCa } from '../support/fakes/test-ca.ts'
import { skipReason } from '../support/os-users.ts'
import { type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { freePort } from '../support/server-process.ts'
import { ADMIN_PASSWORD, api } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv'])
if (reason) process.stderr.write(`run recovery suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('runs across crashes (server and agent processes)', () => {
  let dataDir: string
  let outDir: string
  let env: Record<string, string>
  let base: string
  let server: LongRunning
  let m: RunMachine
  let ca: TestCa

  const startServer = async () => {
    server = spawnDesklink(['server'], env)
    await waitFor(async () => {
      try {
        return (await fetch(`${base}/readyz`)).ok
      } catch {
        return false
      }
    }, 'the server')
  }

  beforeAll(async () => {
    assertBuilt()
    dataDir = mkdtempSync(join(tmpdir(), 'desklink-recovery-'))
    outDir = mkdtempSync(join(tmpdir(), 'desklink-recovery-out-'))
    chmodSync(outDir, 0o1777)
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    env = {
      DESKLINK_DATA_DIR: dataDir,
      DESKLINK_HOST: '127.0.0.1',
      DESKLINK_PORT: String(port),
      DESKLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
      DESKLINK_AGENT_HEARTBEAT_MS: '500',
      DESKLINK_CALLBACK_CA_FILE: join(dataDir, 'callback-ca.pem'),
      DESKLINK_CALLBACK_ALLOWED_HOSTS: '127.0.0.1',
    }
    ca = createTestCa()
    writeFileSync(env.DESKLINK_CALLBACK_CA_FILE, ca.caPem)
    await startServer()
    m = await startRunMachine(() => base)
  })
  afterAll(async () => {
    await m?.remove()
    await server?.stop()
    ca?.remove()
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(outDir, { recursive: true, force: true })
  })

  it('finishes a run whose server was killed with SIGKILL, and records it once', async () => {
    const marker = join(outDir, 'started-count')
    const go = join(outDir, 'go')
    const flow = await pushFlow(base, m.token, m.environmentId, {
      name: 'survives-server',
      // It ends only once the test says so: while the server is down.
      script: [
        `echo started >> "${marker}"`,
        `while [ ! -e "${go}" ]; do sleep 0.1; done`,
        `printf '{"done":true}' > "$DESKLINK_OUTPUTS"`,
      ].join('\n'),
      outputs: [{ name: 'done', type: 'boolean' }],
    })
    const started = await api(base, m.token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId: m.connectionId,
    })
    const runId = started.body.id as string
    await waitFor(() => existsSync(marker), 'the flow to start')
    server.child.kill('SIGKILL')
    await server.exited()
    writeFileSync(go, '')
    // The run ends with no server to tell: the machine's journal keeps its result.
    const journaled = join(m.home.env.DESKLINK_AGENT_STATE_DIR, 'runs', `${runId}.json`)
    await waitFor(
      () => existsSync(journaled) && readFileSync(journaled, 'utf8').includes('"finished"'),
      'the result to be journaled',
    )
    await startServer()
    const run = await waitForRun(base, m.token, started.body.id, undefined, 30_000)
    expect(run.error).toBeNull()
    expect(run).toMatchObject({ status: 'Succeeded', outputs: { done: true } })
    expect(readFileSync(marker, 'utf8').trim().split('\n')).toEqual(['started'])
    const kinds = run.events.map((e: { kind: string }) => e.kind)
    expect(kinds.filter((k: string) => k === 'started')).toHaveLength(1)
    expect(kinds.filter((k: string) => k === 'succeeded')).toHaveLength(1)
    // Acknowledged: the machine's journal holds nothing any more.
    await waitFor(
      () => readdirSync(join(m.home.env.DESKLINK_AGENT_STATE_DIR, 'runs')).length === 0,
      'the journal to clear',
    )
  })

  it('makes a callback its server was killed before making, once it is back', async () => {
    // The first try hangs: the server is killed while it waits for the answer.
    const received: string[] = []
    const { certPem, keyPem } = ca.issueServerCertificate()
    const hook = createHttpsServer({ cert: certPem, key: keyPem }, (req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        received.push(body)
        if (received.length > 1) res.writeHead(200).end()
      })
    })
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = hook.address() as { port: number }
      const flow = await pushFlow(base, m.token, m.environmentId, {
        name: 'calls-back',
        script: 'true',
      })
      const started = await api(base, m.token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId: m.connectionId,
        callbackUrl: `https://127.0.0.1:${port}/hooks/run`,
      })
      const runId = started.body.id as string
      await waitFor(() => received.length === 1, 'the first try of the callback')
      server.child.kill('SIGKILL')
      await server.exited()
      await startServer()
      await waitFor(() => received.length === 2, 'the callback made after the restart')
      expect(JSON.parse(received[1])).toMatchObject({ id: runId, status: 'Succeeded' })
      const run = await waitForRun(base, m.token, runId, (r) =>
        (r.events as { kind: string }[]).some((e) => e.kind === 'callback'),
      )
      const callbacks = run.events.filter((e: { kind: string }) => e.kind === 'callback')
      expect(callbacks).toEqual([
        expect.objectContaining({ details: expect.objectContaining({ delivered: true }) }),
      ])
    } finally {
      hook.closeAllConnections()
      await new Promise((resolve) => hook.close(resolve))
    }
  })

  it('fails a run whose agent was killed with RunLeaseExpired, and never runs it again', async () => {
    const marker = join(outDir, 'agent-killed-count')
    const flow = await pushFlow(base, m.token, m.environmentId, {
      name: 'loses-agent',
      script: `echo started >> "${marker}"\nsleep 30`,
    })
    const started = await api(base, m.token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId: m.connectionId,
    })
    await waitFor(() => existsSync(marker), 'the flow to start')
    m.agent.child.kill('SIGKILL')
    await m.agent.exited()
    const run = await waitForRun(base, m.token, started.body.id, undefined, 30_000)
    expect(run).toMatchObject({ status: 'Failed', error: { code: 'RunLeaseExpired' } })

    await m.restartAgent()
    await waitFor(
      () => readdirSync(join(m.home.env.DESKLINK_AGENT_STATE_DIR, 'runs')).length === 0,
      'the journal to clear',
    )
    expect(readFileSync(marker, 'utf8').trim().split('\n')).toEqual(['started'])
    expect((await api(base, m.token, 'GET', `/runs/${started.body.id}`)).body.status).toBe('Failed')
    // Nor is anything of it left on the machine: the restarted agent removed its workspace.
    await waitFor(
      () => !existsSync(join(AGENT_DEFAULTS.workDir, started.body.id as string)),
      'the workspace to go',
    )
  })
})
