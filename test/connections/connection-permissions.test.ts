/**
 * Who may do what with a connection, as one table: principals (owner, another user, a service
 * principal with use, with edit, without a share, an environment administrator, a principal of
 * another tenant) × actions (read, use, update, the target key a new password is sealed to,
 * test, share, unshare, set run owner, delete). "Use" starts a run through the connection (the
 * flow is shared with everyone, so only the connection decides). Plus the rules of run owners
 * and sharing: only connections with a service-principal run owner are shared, only with
 * service principals, use or edit; the run owner must agree.
 */
import { randomUUID } from 'node:crypto'

import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { insertConnectionRow } from '../support/connection-rows.ts'
import { registerTestMachine, type TestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  clientCredentials,
  signIn,
  startTestServer,
  type TestServer,
  type Tokens,
} from '../support/test-server.ts'

type Row =
  'owner' | 'otherUser' | 'spUse' | 'spEdit' | 'spNoShare' | 'environmentAdmin' | 'otherTenant'
type Action =
  'read' | 'use' | 'update' | 'targetKey' | 'test' | 'share' | 'unshare' | 'setRunOwner' | 'delete'

const ALL = (status: number): Record<Action, number> => ({
  read: status,
  use: status,
  update: status,
  targetKey: status,
  test: status,
  share: status,
  unshare: status,
  setRunOwner: status,
  delete: status,
})
const FULL: Record<Action, number> = {
  read: 200,
  use: 202,
  update: 200,
  targetKey: 200,
  test: 409,
  share: 201,
  unshare: 204,
  setRunOwner: 200,
  delete: 204,
}
const EXPECTED: Record<Row, Record<Action, number>> = {
  owner: FULL,
  otherUser: ALL(404),
  spUse: {
    read: 200,
    use: 202,
    update: 403,
    targetKey: 403,
    test: 403,
    share: 403,
    unshare: 403,
    setRunOwner: 403,
    delete: 403,
  },
  spEdit: {
    read: 200,
    use: 202,
    update: 200,
    targetKey: 200,
    test: 409,
    share: 403,
    unshare: 403,
    setRunOwner: 403,
    delete: 403,
  },
  spNoShare: ALL(404),
  environmentAdmin: FULL,
  otherTenant: ALL(404),
}

describe('connection permissions', () => {
  let t: TestServer
  let admin: string
  let environmentId: string
  let machine: TestMachine
  let flowId: string
  const tokens = {} as Record<Row | 'runOwner' | 'runOwner2', string>
  const ids = {} as Record<Row | 'runOwner' | 'runOwner2', string>
  const keys = {} as Record<'runOwner' | 'runOwner2', CryptoKey>

  async function servicePrincipal(
    name: string,
    role?: string,
  ): Promise<{ id: string; token: string }> {
    const created = await api(t.url, admin, 'POST', '/service-principals', { name })
    if (role)
      await api(t.url, admin, 'POST', `/environments/${environmentId}/role-assignments`, {
        principalType: 'servicePrincipal',
        principalId: created.body.id,
        role,
      })
    const token = (
      (await (
        await clientCredentials(
          t.url,
          'default',
          created.body.clientId,
          created.body.secret.clientSecret,
        )
      ).json()) as Tokens
    ).access_token
    return { id: created.body.id, token }
  }
  async function user(name: string, role?: string): Promise<{ id: string; token: string }> {
    const created = await api(t.url, admin, 'POST', '/users', {
      username: name,
      password: `${name}-password-1`,
    })
    if (role)
      await api(t.url, admin, 'POST', `/environments/${environmentId}/role-assignments`, {
        principalType: 'user',
        principalId: created.body.id,
        role,
      })
    return {
      id: created.body.id,
      token: (await signIn(t.url, 'default', name, `${name}-password-1`)).access_token,
    }
  }
  const runOwnerAssertion = (who: 'runOwner' | 'runOwner2', connectionId: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(ids[who])
      .setSubject(ids[who])
      .setAudience(`connection:${connectionId}`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(keys[who])

  /** A connection of `owner`, written as the API stores it (creating one needs a live machine). */
  async function connection(): Promise<string> {
    const storage = openStorage(t.database.url)
    const tenantId = (await api(t.url, admin, 'GET', '/me')).body.tenant.id
    return insertConnectionRow(
      storage.db,
      { tenantId, environmentId, userId: ids.owner },
      machine.standaloneGroupId,
      { name: 'matrix' },
    ).finally(() => storage.close())
  }

  beforeAll(async () => {
    t = await startTestServer('sqlite')
    admin = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, admin, 'GET', '/me')).body.roles[0].environmentId
    for (const [row, make] of [
      ['owner', () => user('owner', 'EnvironmentMaker')],
      ['otherUser', () => user('other', 'MachineUser')],
      ['environmentAdmin', () => user('envadmin', 'EnvironmentAdmin')],
      ['spUse', () => servicePrincipal('sp-use', 'EnvironmentMaker')],
      ['spEdit', () => servicePrincipal('sp-edit', 'EnvironmentMaker')],
      ['spNoShare', () => servicePrincipal('sp-none', 'EnvironmentMaker')],
      ['runOwner', () => servicePrincipal('sp-run-owner', 'EnvironmentMaker')],
      ['runOwner2', () => servicePrincipal('sp-run-owner-2', 'EnvironmentMaker')],
    ] as const) {
      const made = await make()
      ids[row] = made.id
      tokens[row] = made.token
    }
    for (const who of ['runOwner', 'runOwner2'] as const) {
      const pair = await generateKeyPair('ES256', { extractable: true })
      keys[who] = pair.privateKey
      await api(t.url, admin, 'POST', `/service-principals/${ids[who]}/certificates`, {
        publicKey: await exportSPKI(pair.publicKey),
      })
    }
    const other = await api(t.url, admin, 'POST', '/tenants', {
      slug: 'elsewhere',
      displayName: 'Elsewhere',
      adminPassword: 'elsewhere-admin-pw',
    })
    expect(other.status).toBe(201)
    tokens.otherTenant = (
      await signIn(t.url, 'elsewhere', 'admin', 'elsewhere-admin-pw')
    ).access_token
    machine = await registerTestMachine(t.url, tokens.owner, environmentId, 'matrix-box')
    // Everyone may read the flow, and both run owners may use the machine: only the
    // connection decides who may start a run through it.
    const flow = await api(
      t.url,
      tokens.owner,
      'POST',
      `/environments/${environmentId}/desktop-flows`,
      {
        manifest: { name: 'matrix-flow', runtime: 'shell', entry: 'main.sh' },
        files: [{ path: 'main.sh', contentBase64: Buffer.from('true').toString('base64') }],
      },
    )
    expect(flow.status).toBe(201)
    flowId = flow.body.id
    for (const who of [
      'otherUser',
      'spUse',
      'spEdit',
      'spNoShare',
      'runOwner',
      'runOwner2',
    ] as const) {
      const principalType = who === 'otherUser' ? 'user' : 'servicePrincipal'
      const shared = await api(t.url, tokens.owner, 'POST', `/desktop-flows/${flowId}/shares`, {
        principalType,
        principalId: ids[who],
        access: 'user',
      })
      expect(shared.status, shared.text).toBe(201)
    }
    for (const who of ['runOwner', 'runOwner2'] as const)
      await api(t.url, tokens.owner, 'POST', `/machines/${machine.machineId}/shares`, {
        principalType: 'servicePrincipal',
        principalId: ids[who],
        access: 'user',
      })
  })
  afterAll(async () => t.close())

  /** A fresh shared connection: run owner set (with its proof), shared with spUse and spEdit. */
  async function sharedConnection(): Promise<{ id: string; useShareId: string }> {
    const id = await connection()
    const set = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
      assertion: await runOwnerAssertion('runOwner', id),
    })
    expect(set.status).toBe(200)
    const useShare = await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, {
      principalType: 'servicePrincipal',
      principalId: ids.spUse,
      access: 'use',
    })
    expect(useShare.status).toBe(201)
    expect(
      (
        await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, {
          principalType: 'servicePrincipal',
          principalId: ids.spEdit,
          access: 'edit',
        })
      ).status,
    ).toBe(201)
    return { id, useShareId: useShare.body.id }
  }

  for (const row of Object.keys(EXPECTED) as Row[]) {
    it(`${row}: ${Object.entries(EXPECTED[row])
      .map(([a, s]) => `${a} ${s}`)
      .join(', ')}`, async () => {
      const { id, useShareId } = await sharedConnection()
      const as = (method: string, path: string, body?: unknown) =>
        api(t.url, tokens[row], method, path, body)
      const answers: Record<Action, number> = {
        read: (await as('GET', `/connections/${id}`)).status,
        use: (await as('POST', `/desktop-flows/${flowId}/runs`, { connectionId: id })).status,
        update: (await as('PATCH', `/connections/${id}`, { name: 'renamed' })).status,
        // What a new password is sealed to: for those who may change the connection.
        targetKey: (await as('GET', `/connections/${id}/target-key`)).status,
        test: (await as('POST', `/connections/${id}/test`)).status,
        share: (
          await as('POST', `/connections/${id}/shares`, {
            principalType: 'servicePrincipal',
            principalId: ids.spNoShare,
            access: 'use',
          })
        ).status,
        unshare: (await as('DELETE', `/connections/${id}/shares/${useShareId}`)).status,
        setRunOwner: (
          await as('PUT', `/connections/${id}/run-owner`, {
            servicePrincipalId: ids.runOwner2,
            assertion: await runOwnerAssertion('runOwner2', id),
          })
        ).status,
        delete: (await as('DELETE', `/connections/${id}`)).status,
      }
      expect(answers).toEqual(EXPECTED[row])
    })
  }

  it('shares only connections whose run owner is a service principal, only with service principals, never "share"', async () => {
    const id = await connection()
    const early = await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, {
      principalType: 'servicePrincipal',
      principalId: ids.spUse,
      access: 'use',
    })
    expect(early.status).toBe(409)
    expect(early.body.error.code).toBe('ConnectionNotShareable')
    await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
      assertion: await runOwnerAssertion('runOwner', id),
    })
    expect(
      (
        await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, {
          principalType: 'user',
          principalId: ids.otherUser,
          access: 'use',
        })
      ).status,
    ).toBe(400)
    expect(
      (
        await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, {
          principalType: 'servicePrincipal',
          principalId: ids.spUse,
          access: 'share',
        })
      ).status,
    ).toBe(400)
  })

  it('sets a run owner only with its proof, changes it to another service principal, and never back to a user', async () => {
    const id = await connection()
    const unproven = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
    })
    expect(unproven.status).toBe(403)
    expect(unproven.body.error.code).toBe('RunOwnerProofRequired')
    const wrongKey = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
      assertion: await runOwnerAssertion('runOwner2', id),
    })
    expect(wrongKey.body.error.code).toBe('RunOwnerProofRequired')
    const set = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
      assertion: await runOwnerAssertion('runOwner', id),
    })
    expect(set.body).toMatchObject({
      runOwnerType: 'servicePrincipal',
      runOwnerId: ids.runOwner,
      runOwnerExplicit: true,
    })
    const changed = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner2,
      assertion: await runOwnerAssertion('runOwner2', id),
    })
    expect(changed.body.runOwnerId).toBe(ids.runOwner2)
    const toUser = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.owner,
    })
    expect(toUser.status).toBe(400)
    expect((await api(t.url, tokens.owner, 'GET', `/connections/${id}`)).body.runOwnerId).toBe(
      ids.runOwner2,
    )
  })

  it('refuses to share a connection twice with the same service principal, with a code', async () => {
    const id = await connection()
    await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: ids.runOwner,
      assertion: await runOwnerAssertion('runOwner', id),
    })
    const share = { principalType: 'servicePrincipal', principalId: ids.spUse, access: 'use' }
    expect(
      (await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, share)).status,
    ).toBe(201)
    const again = await api(t.url, tokens.owner, 'POST', `/connections/${id}/shares`, share)
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe('NameAlreadyInUse')
  })

  it('refuses a run owner without the maker role', async () => {
    const id = await connection()
    const noRole = await api(t.url, admin, 'POST', '/service-principals', { name: 'sp-no-role' })
    const refused = await api(t.url, tokens.owner, 'PUT', `/connections/${id}/run-owner`, {
      servicePrincipalId: noRole.body.id,
      assertion: 'x',
    })
    expect(refused.status).toBe(403)
    expect(refused.body.error.details).toMatchObject({ requiredRole: 'EnvironmentMaker' })
  })
})
