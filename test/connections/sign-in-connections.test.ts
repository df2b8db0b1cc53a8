/**
 * Connect with sign-in, end to end: a tenant user signs in through the real authorization
 * endpoint (driven by an HTTP client, as a browser would be) for scope `desktopflows.execute`
 * and the target group; the server redeems the code, keeps the refresh token, mints a token for
 * every test, and a real agent verifies it against the tenant's JWKS and its own policy, then
 * maps the person to an OS account made by the test.
 */
import { randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { groupAudience } from '../../packages/protocol/src/index.ts'
import { type AgentHome, createAgentHome } from '../support/agent-home.ts'
import { startAgentMachine } from '../support/agent-machine.ts'
import { assertBuilt, desklink, type LongRunning, waitFor } from '../support/cli-process.ts'
import { asUser, freeDisplay, prepareX11SocketDir, stopProcess } from '../support/displays.ts'
import { missingTools, type OsUser, skipReason } from '../support/os-users.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { createSignInPerson } from '../support/sign-in-person.ts'
import {
  ADMIN_PASSWORD,
  api,
  authorize,
  exchangeCode,
  pkcePair,
  REDIRECT_URI,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const reason = skipReason(['useradd'])
if (reason) process.stderr.write(`sign-in connection suite skipped: ${reason}\n`)

const PASSWORD = 'Sign-in-person-password-5'
const SCOPE = 'desktopflows.execute offline_access'

describe.skipIf(reason !== undefined)('connect with sign-in (real agent, real sign-in)', () => {
  let t: TestServer
  let admin: string
  let environmentId: string
  let tenantId: string
  let machineId: string
  let groupId: string
  let home: AgentHome
  let agent: LongRunning
  let person: OsUser
  let personToken: string
  const joined = () => ({ allowedTenants: [tenantId], join: { type: 'tenant', tenantId } })

  /** The person signs in for the target group; returns what the client hands to the server. */
  async function signInCode(resource = groupAudience(groupId), username = person.name) {
    const { verifier, challenge } = pkcePair()
    const code = await authorize(t.url, 'default', username, PASSWORD, challenge, SCOPE, resource)
    return { code, codeVerifier: verifier, redirectUri: REDIRECT_URI }
  }
  const create = async (name: string, code?: Awaited<ReturnType<typeof signInCode>>) =>
    api(t.url, personToken, 'POST', `/environments/${environmentId}/connections`, {
      name,
      target: { machineId },
      signIn: code ?? (await signInCode()),
    })

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '1000' })
    admin = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const me = (await api(t.url, admin, 'GET', '/me')).body
    environmentId = me.roles[0].environmentId
    tenantId = me.tenant.id
    person = await createSignInPerson(t.url, admin, environmentId, {
      prefix: 'dls',
      password: PASSWORD,
    })
    personToken = (await signIn(t.url, 'default', person.name, PASSWORD)).access_token

    ;({ machineId, home, agent } = await startAgentMachine(
      () => t.url,
      admin,
      environmentId,
      (h) => h.writePolicy(joined()),
    ))
    groupId = (await api(t.url, admin, 'GET', `/machines/${machineId}`)).body.standaloneGroupId
  })
  afterAll(async () => {
    await agent?.stop()
    person?.remove()
    home?.remove()
    await t?.close()
  })

  it('connects as the person who signed in and maps them to their OS account', async () => {
    const created = await create('sign-in')
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({
      type: 'signIn',
      status: 'Connected',
      error: null,
      username: person.name,
      osAccount: person.name,
      runOwnerType: 'user',
      runOwnerExplicit: false,
    })
  })

  it('mints a fresh token for every test (the stored refresh token rotates)', async () => {
    const created = await create('rotating')
    for (let i = 0; i < 3; i++) {
      const tested = await api(t.url, personToken, 'POST', `/connections/${created.body.id}/test`)
      expect(tested.body.status).toBe('Connected')
    }
  })

  it('answers with the exact allowlist message once the tenant leaves allowedTenants', async () => {
    const created = await create('allowlist')
    home.writePolicy({ ...joined(), allowedTenants: [randomUUID()] })
    try {
      const tested = await api(t.url, personToken, 'POST', `/connections/${created.body.id}/test`)
      expect(tested.body.status).toBe('Error')
      expect(tested.body.error).toMatchObject({
        code: 'UnallowedTenantForConnectWithSignIn',
        message: `Tenant ${tenantId} needs to be explicitly allowlisted to authorize 'connect with sign-in' runs on the machine.`,
        details: { reason: 'tenantNotAllowlisted' },
      })
    } finally {
      home.writePolicy(joined())
    }
    const again = await api(t.url, personToken, 'POST', `/connections/${created.body.id}/test`)
    expect(again.body.status).toBe('Connected')
  })

  it('answers MachineNotJoined on a machine whose policy joins nothing', async () => {
    home.writePolicy({ join: { type: 'none' } })
    try {
      const created = await create('not-joined')
      expect(created.status).toBe(201)
      expect(created.body.status).toBe('Error')
      expect(created.body.error).toMatchObject({
        code: 'MachineNotJoined',
        message: 'This computer has not joined a Desklink tenant or the domain.',
      })
    } finally {
      home.writePolicy(joined())
    }
  })

  it('answers "Unable to connect" when the person has no account on the machine', async () => {
    const ghost = `dlghost${Date.now().toString(36)}`.slice(0, 30)
    const user = await api(t.url, admin, 'POST', '/users', { username: ghost, password: PASSWORD })
    await api(t.url, admin, 'POST', `/environments/${environmentId}/role-assignments`, {
      principalType: 'user',
      principalId: user.body.id,
      role: 'EnvironmentAdmin',
    })
    const ghostToken = (await signIn(t.url, 'default', ghost, PASSWORD)).access_token
    const created = await api(
      t.url,
      ghostToken,
      'POST',
      `/environments/${environmentId}/connections`,
      {
        name: 'ghost',
        target: { machineId },
        signIn: await signInCode(groupAudience(groupId), ghost),
      },
    )
    expect(created.body.error).toMatchObject({
      code: 'InvalidCredentials',
      message: 'Unable to connect. The credentials for the machine are incorrect.',
      details: { reason: 'usernameNotMapped' },
    })
  })

  it('refuses a used code, a code of another person and a code for another target', async () => {
    const code = await signInCode()
    expect((await create('first', code)).body.status).toBe('Connected')
    const reused = await create('again', code)
    expect(reused.status).toBe(400)
    expect(reused.body.error.code).toBe('SignInFailed')

    const byAdmin = await api(t.url, admin, 'POST', `/environments/${environmentId}/connections`, {
      name: 'not-mine',
      target: { machineId },
      signIn: await signInCode(),
    })
    expect(byAdmin.status).toBe(400)
    expect(byAdmin.body.error).toMatchObject({ code: 'SignInFailed' })

    const elsewhere = await create('elsewhere', await signInCode(groupAudience(randomUUID())))
    expect(elsewhere.status).toBe(400)
    expect(elsewhere.body.error.code).toBe('SignInFailed')
  })

  it('keeps a sign-in token to its one purpose: no API access, no mixed scopes', async () => {
    const { code, codeVerifier } = await signInCode()
    const tokens = await exchangeCode(t.url, 'default', code, codeVerifier)
    const accessToken = ((await tokens.json()) as { access_token: string }).access_token
    expect((await api(t.url, accessToken, 'GET', '/me')).status).toBe(401)
    await expect(
      authorize(
        t.url,
        'default',
        person.name,
        PASSWORD,
        pkcePair().challenge,
        `api ${SCOPE}`,
        groupAudience(groupId),
      ),
    ).rejects.toThrow(/no code/)
    await expect(
      authorize(t.url, 'default', person.name, PASSWORD, pkcePair().challenge, SCOPE),
    ).rejects.toThrow(/no code/)
  })

  it('takes no run owner, and signs in again on update', async () => {
    const created = await create('owner')
    const sp = await api(t.url, admin, 'POST', '/service-principals', { name: 'sign-in-sp' })
    const setOwner = await api(
      t.url,
      personToken,
      'PUT',
      `/connections/${created.body.id}/run-owner`,
      {
        servicePrincipalId: sp.body.id,
      },
    )
    expect(setOwner.status).toBe(409)
    expect(setOwner.body.error.code).toBe('SignInRunOwnerNotAllowed')
    const updated = await api(t.url, personToken, 'PATCH', `/connections/${created.body.id}`, {
      signIn: await signInCode(),
    })
    expect(updated.status).toBe(200)
    expect(updated.body.status).toBe('Connected')
    const withPassword = await api(t.url, personToken, 'PATCH', `/connections/${created.body.id}`, {
      password: 'nope-nope-nope',
    })
    expect(withPassword.status).toBe(400)
  })

  it.skipIf(missingTools(['Xvfb']).length > 0)(
    "runs attended through it inside the person's session, as the person, and never unattended",
    async () => {
      prepareX11SocketDir()
      const display = `:${freeDisplay()}`
      const xvfb = asUser(person, ['Xvfb', display, '-nolisten', 'tcp'])
      try {
        const flow = await pushFlow(t.url, personToken, environmentId, {
          name: 'as-me',
          script:
            'printf \'{"user":"%s","display":"%s"}\' "$(id -un)" "${DISPLAY:-none}" > "$DESKLINK_OUTPUTS"',
          outputs: [{ name: 'user' }, { name: 'display' }],
        })
        const connection = await create('attended-runs')
        const run = (runMode: string) =>
          api(t.url, personToken, 'POST', `/desktop-flows/${flow.id}/runs`, {
            connectionId: connection.body.id,
            runMode,
          })
        const unattended = await run('unattended')
        expect(unattended.status).toBe(400)
        expect(unattended.body.error.code).toBe('RunModeNotAllowedForConnection')
        // Without its session on the machine, an attended run would fail at once.
        await waitFor(async () => {
          const seen = await api(t.url, admin, 'GET', `/machines/${machineId}`)
          return ((seen.body.sessions ?? []) as { display: string | null }[]).some(
            (session) => session.display === display,
          )
        }, "the person's session")
        const attended = await run('attended')
        expect(attended.status).toBe(202)
        const done = await waitForRun(t.url, personToken, attended.body.id)
        expect(done).toMatchObject({
          status: 'Succeeded',
          machineCredentialUser: person.name,
          // Inside the person's session: its display.
          outputs: { user: person.name, display },
        })
      } finally {
        await stopProcess(xvfb)
      }
    },
  )

  it('lets the CLI sign the person in and create the connection', async () => {
    const cliHome = createAgentHome()
    try {
      const login = await desklink(
        ['login', '--server', t.url, '--username', person.name, '--password-stdin'],
        { env: cliHome.env, stdin: PASSWORD },
      )
      expect(login.code).toBe(0)
      const created = await desklink(
        [
          'connections',
          'create',
          'by-cli',
          '--environment',
          environmentId,
          '--machine',
          machineId,
          '--sign-in',
          '--sign-in-username',
          person.name,
          '--json',
        ],
        { env: cliHome.env, stdin: `${PASSWORD}\n` },
      )
      expect(created.stderr).toBe('')
      expect(JSON.parse(created.stdout)).toMatchObject({
        type: 'signIn',
        status: 'Connected',
        osAccount: person.name,
      })
    } finally {
      cliHome.remove()
    }
  })
})
