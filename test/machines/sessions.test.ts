/**
 * Sessions as the agent reports them, with real displays: an Xvfb display started by a test
 * OS user appears as that user's active session, shows locked while i3lock runs as that user
 * on that display, active again when it exits, and disappears when the display stops.
 *
 * With systemd-logind (what `loginctl` says, given here, as no machine that runs the tests has
 * logind): a remote session counts as disconnected, even one logind calls active, and a local
 * one is active, locked or disconnected as logind says.
 */
import type { ChildProcess } from 'node:child_process'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  createLogindSessionProvider,
  type Loginctl,
} from '../../packages/agent/src/sessions/logind-sessions.ts'
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

describe('sessions from systemd-logind', () => {
  /** `loginctl` on a machine with these sessions and their properties. */
  const loginctlWith =
    (sessions: { session: string; uid: number; user: string; props: string }[]): Loginctl =>
    (args) => {
      if (args[0] === 'list-sessions')
        return Promise.resolve(
          JSON.stringify(sessions.map(({ session, uid, user }) => ({ session, uid, user }))),
        )
      const found = sessions.find((s) => s.session === args[1])
      return found ? Promise.resolve(found.props) : Promise.reject(new Error('no such session'))
    }

  it('counts a remote session as disconnected, and a local one as logind says', async () => {
    const provider = createLogindSessionProvider({
      loginctl: loginctlWith([
        {
          session: '3',
          uid: 1001,
          user: 'alice',
          props: 'Active=yes\nLockedHint=no\nState=active\nRemote=yes\nDisplay=\n',
        },
        {
          session: '4',
          uid: 1001,
          user: 'alice',
          props: 'Active=yes\nLockedHint=no\nState=active\nRemote=no\nDisplay=:0\n',
        },
        {
          session: '5',
          uid: 1002,
          user: 'bob',
          props: 'Active=no\nLockedHint=yes\nState=online\nRemote=no\nDisplay=:1\n',
        },
        {
          session: '6',
          uid: 1003,
          user: 'carol',
          props: 'Active=yes\nLockedHint=yes\nState=active\nRemote=yes\nDisplay=:2\n',
        },
        {
          session: '7',
          uid: 0,
          user: 'root',
          props: 'Active=yes\nLockedHint=no\nState=active\nRemote=no\nDisplay=\n',
        },
      ]),
    })
    expect(
      (await provider.list()).map(({ id, user, display, state }) => ({ id, user, display, state })),
    ).toEqual([
      { id: 'logind:3', user: 'alice', display: null, state: 'disconnected' },
      { id: 'logind:4', user: 'alice', display: ':0', state: 'active' },
      { id: 'logind:5', user: 'bob', display: ':1', state: 'locked' },
      { id: 'logind:6', user: 'carol', display: ':2', state: 'disconnected' },
    ])
  })
})
