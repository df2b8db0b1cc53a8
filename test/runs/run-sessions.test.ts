/**
 * The session rules of machine selection with real sessions (reference §3.4–3.5), with a real
 * server process and a real agent process: an Xvfb display started as the connection's account
 * is its session. Attended runs need that session active and unlocked and run inside it
 * (DISPLAY); unattended runs need the account to have no session there, of any state, unless the
 * machine reuses sessions (and then only an active one, with no run in it). A run refused only
 * for its user's session fails at once, unless extended prioritization lets it wait; a run held
 * up by anything else holds up the runs behind it, and they say so. An attended run still has its
 * connection's password checked with PAM, and a session takes one run at a time.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { assertBuilt, waitFor } from '../support/cli-process.ts'
import { asUser, freeDisplay, prepareX11SocketDir, stopProcess } from '../support/displays.ts'
import { createOsUser, skipReason } from '../support/os-users.ts'
import { RUN_ACCOUNT_PASSWORD, type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun, waitingWith } from '../support/runs.ts'
import { startServerProcess } from '../support/server-process.ts'
import { api, type TestServer } from '../support/test-server.ts'

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
  /**
   * Lets go of any flow still waiting for `release` (a test that failed half way would leave it
   * running into the next ones), then removes the file once the flow had time to see it.
   */
  const letGo = async (release: string) => {
    writeFileSync(release, '')
    await new Promise((resolve) => setTimeout(resolve, 500))
    rmSync(release, { force: true })
  }
  /** Waits until the queued run names `code` as the machine's reason. */
  const waitsWith = (id: string, code: string) => waitForRun(t.url, m.token, id, waitingWith(code))

  beforeAll(async () => {
    assertBuilt()
    t = await startServerProcess('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '500' })
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

  it('fails an attended run at once while its user is not signed in, unless extended prioritization lets it wait; then runs it inside the session', async () => {
    const refused = await waitForRun(t.url, m.token, (await run('attended')).body.id)
    expect(refused).toMatchObject({
      status: 'Failed',
      error: {
        code: 'NoCandidateMachine',
        details: { subErrors: [{ machineId: m.machineId, code: 'AttendedUserNotLoggedIn' }] },
      },
    })
    // From here on, runs refused for their session wait for it.
    await m.setMachine({ extendedQueuePrioritization: true })
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
      await letGo(release)
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

  it('makes runs wait while the session is locked, and does not reuse a locked session', async () => {
    locker = asUser(m.account, ['i3lock', '-n'], { DISPLAY: display })
    await waitFor(async () => (await sessionState()) === 'locked', 'the lock')
    const attended = (await run('attended')).body.id
    const unattended = (await run('unattended')).body.id
    await waitsWith(attended, 'AttendedUserSessionNotActive')
    await waitsWith(unattended, 'UnattendedUserSessionLocked')
    await m.setMachine({ reuseSessions: true })
    try {
      // A pass after the change, and the run still waits for the session to be unlocked.
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(await waitsWith(unattended, 'UnattendedUserSessionLocked')).toMatchObject({
        status: 'Queued',
      })
    } finally {
      await m.setMachine({ reuseSessions: false })
    }
    await api(t.url, m.token, 'POST', `/runs/${unattended}/cancel`)
    await stopProcess(locker)
    expect((await waitForRun(t.url, m.token, attended)).status).toBe('Succeeded')
  })

  it('runs one run at a time in a session: with reuse sessions, an attended run waits for the unattended one in it', async () => {
    await waitFor(async () => (await sessionState()) === 'active', 'the session')
    const release = join(tmpdir(), `desklink-release-${randomUUID()}`)
    const holds = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'holds-the-session',
      script: `while [ ! -e "${release}" ]; do sleep 0.1; done`,
    })
    await m.setMachine({ reuseSessions: true })
    try {
      const holder = await api(t.url, m.token, 'POST', `/desktop-flows/${holds.id}/runs`, {
        connectionId: m.connectionId,
      })
      await waitForRun(t.url, m.token, holder.body.id, (r) => r.status === 'Running')
      const attended = (await run('attended')).body.id
      await waitsWith(attended, 'UIFlowAlreadyRunning')
      writeFileSync(release, '')
      for (const id of [holder.body.id, attended])
        expect((await waitForRun(t.url, m.token, id)).status).toBe('Succeeded')
    } finally {
      await letGo(release)
      await m.setMachine({ reuseSessions: false })
    }
  })

  it('holds an attended run behind an unattended head that waits for a slot, with extended prioritization too, and says why until it times out', async () => {
    await waitFor(async () => (await sessionState()) === 'active', 'the session')
    // Another account, with no session here: its unattended runs take the one slot.
    const other = createOsUser('dlo', RUN_ACCOUNT_PASSWORD)
    const release = join(tmpdir(), `desklink-release-${randomUUID()}`)
    const settings = (changes: Record<string, number>) =>
      api(t.url, m.token, 'PATCH', `/environments/${m.environmentId}/run-settings`, changes)
    try {
      const otherConnection = await api(
        t.url,
        m.token,
        'POST',
        `/environments/${m.environmentId}/connections`,
        {
          name: `other-${other.name}`,
          target: { machineId: m.machineId },
          username: other.name,
          password: RUN_ACCOUNT_PASSWORD,
        },
      )
      expect(otherConnection.body.status, otherConnection.text).toBe('Connected')
      const holds = await pushFlow(t.url, m.token, m.environmentId, {
        name: 'holds-the-slot',
        script: `while [ ! -e "${release}" ]; do sleep 0.1; done`,
      })
      const asOther = (flow: string, priority = 'normal') =>
        api(t.url, m.token, 'POST', `/desktop-flows/${flow}/runs`, {
          connectionId: otherConnection.body.id,
          priority,
        })
      const holder = (await asOther(holds.id)).body.id
      await waitForRun(t.url, m.token, holder, (r) => r.status === 'Running')
      const head = (await asOther(flowId, 'high')).body.id
      await waitsWith(head, 'UIFlowAlreadyRunning')
      // The run behind it has a queue timeout of its own, set when it is requested.
      await settings({ queueTimeoutSeconds: 6 })
      const behind = (await run('attended')).body.id
      await settings({ queueTimeoutSeconds: 6 * 3600 })
      // The machine could take it (its user's session is free), but the head goes first.
      const waiting = await waitForRun(
        t.url,
        m.token,
        behind,
        (r) => (r.waiting as { blockedBy: string | null } | null)?.blockedBy === head,
      )
      expect(waiting.waiting.machines).toEqual([
        expect.objectContaining({ machineId: m.machineId, code: 'BlockedByQueueHead' }),
      ])
      const timedOut = await waitForRun(t.url, m.token, behind)
      expect(timedOut.error).toMatchObject({
        code: 'NoCandidateMachine',
        details: { subErrors: [{ machineId: m.machineId, code: 'BlockedByQueueHead' }] },
      })
      writeFileSync(release, '')
      for (const id of [holder, head])
        expect((await waitForRun(t.url, m.token, id)).status).toBe('Succeeded')
    } finally {
      await letGo(release)
      await settings({ queueTimeoutSeconds: 6 * 3600 })
      other.remove()
    }
  })
})
