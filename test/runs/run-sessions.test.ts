/**
 * The session rules of machine selection with real sessions (reference §3.4–3.5): an Xvfb
 * display started as the connection's account is its session. Attended runs need that session
 * active and unlocked and run inside it (DISPLAY); unattended runs wait while the account has a
 * session of any state, unless the machine reuses sessions. Each waiting run says why. An
 * attended run still has its connection's password checked with PAM, and a session takes one
 * attended run at a time.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { assertBuilt, waitFor } from '../support/cli-process.ts'
import { asUser, freeDisplay, prepareX11SocketDir, stopProcess } from '../support/displays.ts'
import { skipReason } from '../support/os-users.ts'
import { RUN_ACCOUNT_PASSWORD, type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun, waitingWith } from '../support/runs.ts'
import { api, startTestServer, type TestServer } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv', 'Xvfb', 'i3lock'])
if (reason) process.stderr.write(`run session suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('session rules with real sessions', () => {
  let t: TestServer
  let m: RunMachine
  let flowId: string
  let display: string
  let xvfb: ChildProcess | undefined
  let locker: ChildProcess | undefined
  const run = (runMode: 'attended' | 'unattended') =>
    api(t.url, m.token, 'POST', `/desktop-flows/${flowId}/runs`, {
      connectionId: m.connectionId,
      runMode,
    })
  const sessionState = async () =>
    (
      (await api(t.url, m.token, 'GET', `/machines/${m.machineId}`)).body.sessions as {
        display: string
        state: string
      }[]
    ).find((s) => s.display === display)?.state
  /** Waits until the queued run names `code` as the machine's reason. */
  const waitsWith = (id: string, code: string) => waitForRun(t.url, m.token, id, waitingWith(code))

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '500' })
    m = await startRunMachine(() => t.url)
    flowId = (
      await pushFlow(t.url, m.token, m.environmentId, {
        name: 'in-session',
        script: 'printf \'{"display":"%s"}\' "${DISPLAY:-none}" > "$DESKLINK_OUTPUTS"',
        outputs: [{ name: 'display' }],
      })
    ).id
    prepareX11SocketDir()
    display = `:${freeDisplay()}`
  })
  afterAll(async () => {
    await stopProcess(locker)
    await stopProcess(xvfb)
    await m?.remove()
    await t?.close()
  })

  it('makes an attended run wait for the user to sign in, then runs it inside the session', async () => {
    const attended = (await run('attended')).body.id
    await waitsWith(attended, 'AttendedUserNotLoggedIn')
    xvfb = asUser(m.account, ['Xvfb', display, '-nolisten', 'tcp'])
    const done = await waitForRun(t.url, m.token, attended)
    expect(done).toMatchObject({ status: 'Succeeded', outputs: { display } })
  })

  it('runs one attended run at a time in a session: the next waits with UIFlowAlreadyRunning', async () => {
    await waitFor(async () => (await sessionState()) === 'active', 'the session')
    const release = join(tmpdir(), `desklink-release-${randomUUID()}`)
    const holds = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'holds-the-session',
      script: `while [ ! -e "${release}" ]; do sleep 0.1; done`,
    })
    try {
      const first = await api(t.url, m.token, 'POST', `/desktop-flows/${holds.id}/runs`, {
        connectionId: m.connectionId,
        runMode: 'attended',
      })
      await waitForRun(t.url, m.token, first.body.id, (r) => r.status === 'Running')
      const second = (await run('attended')).body.id
      await waitsWith(second, 'UIFlowAlreadyRunning')
      writeFileSync(release, '')
      expect((await waitForRun(t.url, m.token, first.body.id)).status).toBe('Succeeded')
      expect((await waitForRun(t.url, m.token, second)).status).toBe('Succeeded')
    } finally {
      rmSync(release, { force: true })
    }
  })

  it("refuses an attended run whose password the account no longer takes, even in the user's session", async () => {
    await waitFor(async () => (await sessionState()) === 'active', 'the session')
    // Changed on the machine after the connection was made: an open session proves nothing.
    execFileSync('chpasswd', { input: `${m.account.name}:Another-password-7\n` })
    try {
      const refused = await waitForRun(t.url, m.token, (await run('attended')).body.id)
      expect(refused).toMatchObject({
        status: 'Failed',
        outputs: null,
        error: { code: 'WindowsIdentityIncorrect' },
      })
    } finally {
      execFileSync('chpasswd', { input: `${m.account.name}:${RUN_ACCOUNT_PASSWORD}\n` })
    }
  })

  it('keeps unattended runs off a machine where the user has a session, unless it reuses sessions', async () => {
    await waitFor(async () => (await sessionState()) === 'active', 'the session')
    const unattended = (await run('unattended')).body.id
    await waitsWith(unattended, 'SessionExistsForTheUserWhenUnattended')
    await m.setMachine({ reuseSessions: true })
    expect((await waitForRun(t.url, m.token, unattended)).status).toBe('Succeeded')
    await m.setMachine({ reuseSessions: false })
  })

  it('makes attended runs wait while the session is locked, and says so for unattended ones', async () => {
    locker = asUser(m.account, ['i3lock', '-n'], { DISPLAY: display })
    await waitFor(async () => (await sessionState()) === 'locked', 'the lock')
    const attended = (await run('attended')).body.id
    const unattended = (await run('unattended')).body.id
    await waitsWith(attended, 'AttendedUserSessionNotActive')
    await m.setMachine({ extendedQueuePrioritization: true })
    await waitsWith(unattended, 'UnattendedUserSessionLocked')
    await api(t.url, m.token, 'POST', `/runs/${unattended}/cancel`)
    await m.setMachine({ extendedQueuePrioritization: false })
    await stopProcess(locker)
    expect((await waitForRun(t.url, m.token, attended)).status).toBe('Succeeded')
  })
})
