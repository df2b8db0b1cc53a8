/**
 * Sessions as the agent reports them, with real displays: an Xvfb display started by a test
 * OS user appears as that user's active session, shows locked while i3lock runs as that user
 * on that display, active again when it exits, and disappears when the display stops.
 */
import type { ChildProcess } from 'node:child_process'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { type AgentHome, createAgentHome } from '../support/agent-home.ts'
import {
  assertBuilt,
  desklink,
  type LongRunning,
  spawnDesklink,
  waitFor,
} from '../support/cli-process.ts'
import { asUser, freeDisplay, prepareX11SocketDir, stopProcess } from '../support/displays.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const reason = skipReason(['Xvfb', 'i3lock', 'setpriv'])
if (reason) process.stderr.write(`sessions suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('sessions from real displays', () => {
  let t: TestServer
  let token: string
  let home: AgentHome
  let agent: LongRunning
  let user: OsUser
  let machineId: string
  let xvfb: ChildProcess | undefined
  let locker: ChildProcess | undefined

  const sessions = async () =>
    (await api(t.url, token, 'GET', `/machines/${machineId}`)).body.sessions as {
      user: string
      display: string
      state: string
    }[]

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '500' })
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const me = await api(t.url, token, 'GET', '/me')
    const registrationToken = (
      await api(
        t.url,
        token,
        'POST',
        `/environments/${me.body.roles[0].environmentId}/registration-tokens`,
        {},
      )
    ).body.token
    home = createAgentHome()
    const registered = await desklink(['agent', 'register', '--server', t.url, '--json'], {
      env: home.env,
      stdin: registrationToken,
    })
    machineId = JSON.parse(registered.stdout).machineId
    agent = spawnDesklink(['agent', 'run'], home.env)
    await waitFor(
      async () =>
        (await api(t.url, token, 'GET', `/machines/${machineId}`)).body.status === 'connected',
      'the agent',
    )
    user = createOsUser()
    prepareX11SocketDir()
  })

  afterAll(async () => {
    await stopProcess(locker)
    await stopProcess(xvfb)
    await agent?.stop()
    user?.remove()
    home?.remove()
    await t?.close()
  })

  it('follows a display through appear, lock, unlock and stop', async () => {
    const display = `:${freeDisplay()}`
    xvfb = asUser(user, ['Xvfb', display, '-nolisten', 'tcp'])
    const appeared = await waitFor(
      async () => (await sessions()).find((s) => s.display === display),
      'the session to appear',
    )
    expect(appeared).toMatchObject({ user: user.name, display, state: 'active' })

    locker = asUser(user, ['i3lock', '-n'], { DISPLAY: display })
    await waitFor(
      async () => (await sessions()).find((s) => s.display === display)?.state === 'locked',
      'the session to lock',
    )

    await stopProcess(locker)
    await waitFor(
      async () => (await sessions()).find((s) => s.display === display)?.state === 'active',
      'the session to unlock',
    )

    await stopProcess(xvfb)
    await waitFor(
      async () => !(await sessions()).some((s) => s.display === display),
      'the session to disappear',
    )
  })
})
