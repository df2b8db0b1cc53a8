/**
 * Synchronous runs through a connect-with-sign-in connection: the sign-in token is minted when
 * the request arrives (the caller waits), so a run that waits for the person's session longer
 * than the token lives fails with `PasswordlessTokenExpiry` instead of running (reference
 * §3.10). Runs through such connections wait in the queue for at most their own, shorter timeout.
 * Tokens live 15 s on this server, so the suite signs in again whenever it calls the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { groupAudience } from '../../packages/protocol/src/index.ts'
import type { AgentHome } from '../support/agent-home.ts'
import { startAgentMachine } from '../support/agent-machine.ts'
import { assertBuilt, type LongRunning } from '../support/cli-process.ts'
import { asUser, freeDisplay, prepareX11SocketDir, stopProcess } from '../support/displays.ts'
import { missingTools, type OsUser, skipReason } from '../support/os-users.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { createSignInPerson } from '../support/sign-in-person.ts'
import {
  ADMIN_PASSWORD,
  api,
  authorize,
  pkcePair,
  REDIRECT_URI,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const reason = skipReason(['useradd']) ?? missingTools(['Xvfb'])[0]
if (reason) process.stderr.write(`sign-in token expiry suite skipped: ${reason}\n`)

const PASSWORD = 'Sign-in-expiry-password-7'
const TOKEN_SECONDS = 15

describe.skipIf(reason !== undefined)('a synchronous run whose sign-in token expires', () => {
  let t: TestServer
  let environmentId: string
  let machineId: string
  let home: AgentHome
  let agent: LongRunning
  let person: OsUser
  const adminToken = async () =>
    (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
  const personToken = async () =>
    (await signIn(t.url, 'default', person.name, PASSWORD)).access_token

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', {
      DESKLINK_AGENT_HEARTBEAT_MS: '1000',
      DESKLINK_ACCESS_TOKEN_TTL_SECONDS: String(TOKEN_SECONDS),
    })
    const admin = await adminToken()
    const me = (await api(t.url, admin, 'GET', '/me')).body
    environmentId = me.roles[0].environmentId
    const tenantId = me.tenant.id
    person = await createSignInPerson(t.url, admin, environmentId, {
      prefix: 'dlx',
      password: PASSWORD,
    })
    ;({ machineId, home, agent } = await startAgentMachine(
      () => t.url,
      await adminToken(),
      environmentId,
      (h) => h.writePolicy({ allowedTenants: [tenantId], join: { type: 'tenant', tenantId } }),
    ))
    // The runs here wait for the person's session rather than fail at once without it.
    const waits = await api(t.url, admin, 'PATCH', `/machines/${machineId}`, {
      settings: { extendedQueuePrioritization: true },
    })
    expect(waits.status, waits.text).toBe(200)
  })
  afterAll(async () => {
    await agent?.stop()
    person?.remove()
    home?.remove()
    await t?.close()
  })

  /** A connect-with-sign-in connection of the person to the machine, made by the person. */
  async function signInConnection(token: string, name: string): Promise<string> {
    const groupId = (await api(t.url, token, 'GET', `/machines/${machineId}`)).body
      .standaloneGroupId
    const { verifier, challenge } = pkcePair()
    const code = await authorize(
      t.url,
      'default',
      person.name,
      PASSWORD,
      challenge,
      'desktopflows.execute offline_access',
      groupAudience(groupId),
    )
    const connection = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/connections`,
      {
        name,
        target: { machineId },
        signIn: { code, codeVerifier: verifier, redirectUri: REDIRECT_URI },
      },
    )
    expect(connection.status, connection.text).toBe(201)
    return connection.body.id as string
  }

  it('gives a run through a sign-in connection the shorter queue timeout of such connections', async () => {
    const admin = await adminToken()
    const settings = (changes: Record<string, number>) =>
      api(t.url, admin, 'PATCH', `/environments/${environmentId}/run-settings`, changes)
    const token = await personToken()
    const connectionId = await signInConnection(token, 'waits-for-session')
    const flow = await pushFlow(t.url, token, environmentId, { name: 'waits', script: 'true' })
    expect((await settings({ signInQueueTimeoutSeconds: 2 })).status).toBe(200)
    try {
      // The person is not signed in on the machine: the run waits, 2 s and not 6 h.
      const queued = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId,
        runMode: 'attended',
      })
      expect(queued.status, queued.text).toBe(202)
      const ended = await waitForRun(t.url, await adminToken(), queued.body.id)
      expect(ended.error).toMatchObject({
        code: 'NoCandidateMachine',
        details: { subErrors: [{ machineId, code: 'AttendedUserNotLoggedIn' }] },
      })
      expect(Date.parse(ended.finishedAt) - Date.parse(ended.requestedAt)).toBeLessThan(10_000)
    } finally {
      await settings({ signInQueueTimeoutSeconds: 3600 })
    }
  })

  it('fails with PasswordlessTokenExpiry when the session comes after the token expired', async () => {
    const token = await personToken()
    const connectionId = await signInConnection(token, 'sync-sign-in')
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'never-runs',
      script: 'true',
    })

    // The person is not signed in on the machine: the attended run waits, and the caller too.
    const answer = api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      runMode: 'attended',
      wait: true,
    })
    await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS + 1) * 1000))
    prepareX11SocketDir()
    const xvfb = asUser(person, ['Xvfb', `:${freeDisplay()}`, '-nolisten', 'tcp'])
    try {
      const ended = await answer
      expect(ended.status, ended.text).toBe(200)
      expect(ended.body).toMatchObject({
        status: 'Failed',
        startedAt: null,
        error: { code: 'PasswordlessTokenExpiry' },
      })
    } finally {
      await stopProcess(xvfb)
    }
  }, 90_000)
})
