/**
 * `desklink run` while it waits, as the built command against a real server whose machine is in
 * maintenance so that runs wait: progress on standard error with --json too (standard output
 * stays the run, as JSON), and the waiting carried through a server restart, or ended after
 * 30 s without the server, naming the run that goes on.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { type ChannelTestbed, startChannelTestbed } from '../support/channel-testbed.ts'
import { assertBuilt, BIN, waitFor } from '../support/cli-process.ts'
import { signInCli } from '../support/cli-sign-in.ts'
import { ADMIN_PASSWORD, api, signIn } from '../support/test-server.ts'

/** A `desklink` process whose standard output and error are kept apart. */
interface Waiter {
  readonly child: ChildProcessWithoutNullStreams
  stdout(): string
  stderr(): string
  exited(): Promise<number | null>
}

function startWaiter(args: string[], env: Record<string, string>): Waiter {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin.end()
  const exit = new Promise<number | null>((done) => child.on('close', (code) => done(code)))
  return { child, stdout: () => stdout, stderr: () => stderr, exited: () => exit }
}

/** Ends a waiter a failed test left running. */
function stopWaiter(waiter: Waiter | undefined): void {
  if (waiter && waiter.child.exitCode === null && waiter.child.signalCode === null)
    waiter.child.kill('SIGKILL')
}

describe('desklink run, while it waits', () => {
  let bed: ChannelTestbed
  let configDir: string
  const env = () => ({ DESKLINK_CONFIG_DIR: configDir })
  /** The server's API as the administrator, with a token from the server as it runs now. */
  const asAdmin = async (method: string, path: string, body?: unknown) =>
    api(
      bed.t.url,
      (await signIn(bed.t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token,
      method,
      path,
      body,
    )
  let serverDown = false
  const stopServer = async () => {
    serverDown = true
    await bed.t.server.close()
  }
  const startServerAgain = async () => {
    await bed.t.restart()
    serverDown = false
  }
  /** The id the waiter printed for its run, once it printed it. */
  const runIdOf = (waiter: Waiter) =>
    waitFor(() => /^Run (\S+)$/m.exec(waiter.stderr())?.[1], 'the run id on stderr')

  beforeAll(async () => {
    assertBuilt()
    bed = await startChannelTestbed('sqlite')
    configDir = await signInCli(bed.t.url)
    const maintenance = await asAdmin('PATCH', `/machines/${bed.machine.machineId}`, {
      settings: { maintenanceMode: true },
    })
    expect(maintenance.status, maintenance.text).toBe(200)
  })
  // A test that failed with the server stopped leaves it to the next one running.
  afterEach(async () => {
    if (serverDown) await startServerAgain()
  })
  afterAll(async () => {
    await bed?.close()
    if (configDir) rmSync(configDir, { recursive: true, force: true })
  })

  it('says how it goes on stderr with --json, and prints the run alone on stdout', async () => {
    let waiter: Waiter | undefined
    try {
      waiter = startWaiter(['run', 'picky', '--connection', 'picky', '--json'], env())
      const runId = await runIdOf(waiter)
      await waitFor(
        () =>
          /^Queued \(position \d+\): picky: .*\(MachineInMaintenance\)$/m.test(waiter!.stderr()),
        'the queued line on stderr',
      )
      expect((await asAdmin('POST', `/runs/${runId}/cancel`)).status).toBe(200)
      expect(await waiter.exited()).toBe(1)
      // Nothing but the run: progress and the error went to stderr.
      expect(JSON.parse(waiter.stdout())).toMatchObject({ id: runId, status: 'Cancelled' })
      expect(JSON.parse(waiter.stderr().trimEnd().split('\n').at(-1) ?? '')).toMatchObject({
        error: { code: 'Cancelled' },
      })
    } finally {
      stopWaiter(waiter)
    }
  })

  /** `desklink run` waiting for its queued run, when the server stops. */
  async function queuedThenServerStops(): Promise<{ waiter: Waiter; runId: string }> {
    const waiter = startWaiter(['run', 'picky', '--connection', 'picky'], env())
    try {
      const runId = await runIdOf(waiter)
      await waitFor(() => /^Queued \(position \d+\)/m.test(waiter.stderr()), 'the queued line')
      await stopServer()
      return { waiter, runId }
    } catch (error) {
      stopWaiter(waiter)
      throw error
    }
  }

  it('waits through a server restart, saying so, and ends with the run', async () => {
    let waiter: Waiter | undefined
    try {
      let runId: string
      ;({ waiter, runId } = await queuedThenServerStops())
      await waitFor(
        () => waiter!.stderr().includes('Trying again for up to 30 s'),
        'the CLI to say it tries again',
      )
      expect(waiter.stderr()).toMatch(
        new RegExp(
          `^Cannot reach http://127\\.0\\.0\\.1:\\d+: .+ Trying again for up to 30 s; ` +
            `run ${runId} goes on on the server\\.$`,
          'm',
        ),
      )
      await startServerAgain()
      await waitFor(
        () => waiter!.stderr().includes('The server answers again.'),
        'the CLI to reach the restarted server',
        20_000,
      )
      expect(waiter.child.exitCode).toBeNull()
      expect((await asAdmin('POST', `/runs/${runId}/cancel`)).status).toBe(200)
      expect(await waiter.exited()).toBe(1)
      expect(waiter.stdout()).toMatch(new RegExp(`^id:\\s+${runId}$`, 'm'))
      expect(waiter.stdout()).toMatch(/^status:\s+Cancelled$/m)
      expect(waiter.stderr()).not.toContain('ServerUnreachable')
    } finally {
      stopWaiter(waiter)
    }
  })

  it(
    'stops waiting after 30 s without the server, naming the run that goes on',
    { timeout: 60_000 },
    async () => {
      let waiter: Waiter | undefined
      try {
        let runId: string
        ;({ waiter, runId } = await queuedThenServerStops())
        const lostAt = Date.now()
        expect(await waiter.exited()).toBe(1)
        expect(Date.now() - lostAt).toBeGreaterThanOrEqual(29_000)
        const said = waiter.stderr()
        expect(said).toMatch(/^Error \(ServerUnreachable\): Cannot reach /m)
        expect(said).toContain(`run ${runId} goes on on the server`)
        expect(said).toContain(`desklink runs show ${runId}`)
        expect(said).toMatch(new RegExp(`^ {2}runId: ${runId}$`, 'm'))
        // The server, back, still holds the run: stopping the waiting did not stop it.
        await startServerAgain()
        expect((await asAdmin('GET', `/runs/${runId}`)).body.status).toBe('Queued')
        await asAdmin('POST', `/runs/${runId}/cancel`)
      } finally {
        stopWaiter(waiter)
      }
    },
  )
})
