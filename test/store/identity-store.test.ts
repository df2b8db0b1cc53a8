/**
 * The store behaviour suite: the same assertions against SQLite and PostgreSQL, on real
 * databases migrated from scratch. No mocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  createIdentityStores,
  type IdentityStores,
} from '../../packages/server/src/identity/identity-stores.ts'
import {
  LATEST_MIGRATION,
  migrateToLatest,
  openStorage,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import {
  createOAuthStore,
  hashOpaque,
  type OAuthStore,
} from '../../packages/server/src/tokens/oauth-store.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

const at = (offsetMs = 0) => new Date(Date.UTC(2026, 0, 1) + offsetMs).toISOString()

describe.each(BACKENDS)('identity stores on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  let stores: IdentityStores
  let oauth: OAuthStore
  const tenantA = uuidv7()
  const tenantB = uuidv7()

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    const report = await migrateToLatest(storage)
    expect(report.error).toBeUndefined()
    expect(report.applied.at(-1)).toBe(LATEST_MIGRATION)
    stores = createIdentityStores(storage.db)
    oauth = createOAuthStore(storage.db)
    for (const [id, slug] of [
      [tenantA, 'store-a'],
      [tenantB, 'store-b'],
    ] as const) {
      await stores.tenants.insertTenant({
        id,
        slug,
        displayName: slug,
        status: 'active',
        createdAt: at(),
      })
    }
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  it('migrating again applies nothing', async () => {
    const again = await migrateToLatest(storage)
    expect(again).toEqual({ applied: [] })
  })

  it('reports a duplicate tenant slug as a unique violation', async () => {
    const error = await stores.tenants
      .insertTenant({
        id: uuidv7(),
        slug: 'store-a',
        displayName: 'x',
        status: 'active',
        createdAt: at(),
      })
      .catch((e: unknown) => e)
    expect(storage.isUniqueViolation(error)).toBe(true)
    expect(storage.isUniqueViolation(new Error('other'))).toBe(false)
  })

  it('counts as a number on both databases', async () => {
    const count = await stores.tenants.countTenants()
    expect(count).toBe(2)
    expect(typeof count).toBe('number')
  })

  it('scopes environments to their tenant', async () => {
    const id = uuidv7()
    await stores.tenants.insertEnvironment({
      id,
      tenantId: tenantA,
      name: 'prod',
      description: '',
      createdAt: at(),
    })
    expect((await stores.tenants.findEnvironment(tenantA, id))?.name).toBe('prod')
    expect(await stores.tenants.findEnvironment(tenantB, id)).toBeUndefined()
    expect(await stores.tenants.deleteEnvironment(tenantB, id)).toBe(false)
    expect(await stores.tenants.listEnvironments(tenantB)).toEqual([])
  })

  it('keeps user names unique per tenant, not across tenants, and round-trips flags', async () => {
    const user = (tenantId: string) => ({
      id: uuidv7(),
      tenantId,
      username: 'same-name',
      displayName: 'Same',
      passwordHash: 'scrypt$…',
      status: 'active' as const,
      isTenantAdmin: true,
      isPlatformAdmin: false,
      createdAt: at(),
      updatedAt: at(),
    })
    const a = user(tenantA)
    await stores.principals.insertUser(a)
    await stores.principals.insertUser(user(tenantB))
    const error = await stores.principals.insertUser(user(tenantA)).catch((e: unknown) => e)
    expect(storage.isUniqueViolation(error)).toBe(true)
    const found = await stores.principals.findUserByUsername(tenantA, 'same-name')
    expect(found).toEqual(a)
    expect(await stores.principals.findUser(tenantB, a.id)).toBeUndefined()
    await stores.principals.updateUser(
      tenantA,
      a.id,
      { isTenantAdmin: false, status: 'deactivated' },
      at(1000),
    )
    expect(await stores.principals.findUser(tenantA, a.id)).toMatchObject({
      isTenantAdmin: false,
      status: 'deactivated',
      updatedAt: at(1000),
    })
  })

  it('deletes a service principal with its credentials and role assignments', async () => {
    const spId = uuidv7()
    const environmentId = uuidv7()
    await stores.tenants.insertEnvironment({
      id: environmentId,
      tenantId: tenantA,
      name: 'sp-env',
      description: '',
      createdAt: at(),
    })
    await stores.principals.insertServicePrincipal({
      id: spId,
      tenantId: tenantA,
      name: 'bot',
      description: '',
      status: 'active',
      createdAt: at(),
      updatedAt: at(),
    })
    await stores.principals.insertCredential({
      id: uuidv7(),
      tenantId: tenantA,
      servicePrincipalId: spId,
      kind: 'secret',
      secretHash: 'h',
      publicJwk: null,
      hint: 'dls_…',
      expiresAt: null,
      createdAt: at(),
    })
    await stores.roles.insert({
      id: uuidv7(),
      tenantId: tenantA,
      environmentId,
      principalType: 'servicePrincipal',
      principalId: spId,
      role: 'MachineUser',
      createdAt: at(),
    })
    expect(await stores.principals.deleteServicePrincipal(tenantB, spId)).toBe(false)
    expect(await stores.principals.deleteServicePrincipal(tenantA, spId)).toBe(true)
    expect(await stores.principals.listCredentials(tenantA, spId)).toEqual([])
    expect(await stores.roles.listForPrincipal(tenantA, 'servicePrincipal', spId)).toEqual([])
  })

  it('refuses the same role twice for one principal in one environment', async () => {
    const environmentId = uuidv7()
    const principalId = uuidv7()
    await stores.tenants.insertEnvironment({
      id: environmentId,
      tenantId: tenantA,
      name: 'roles-env',
      description: '',
      createdAt: at(),
    })
    const assignment = {
      tenantId: tenantA,
      environmentId,
      principalType: 'user' as const,
      principalId,
      role: 'MachineOwner' as const,
      createdAt: at(),
    }
    await stores.roles.insert({ id: uuidv7(), ...assignment })
    const error = await stores.roles
      .insert({ id: uuidv7(), ...assignment })
      .catch((e: unknown) => e)
    expect(storage.isUniqueViolation(error)).toBe(true)
  })

  it('consumes an authorization code exactly once', async () => {
    const userId = (await stores.principals.findUserByUsername(tenantA, 'same-name'))!.id
    await oauth.saveCode({
      code_hash: hashOpaque('the-code'),
      tenant_id: tenantA,
      client_id: 'desklink-cli',
      user_id: userId,
      redirect_uri: 'http://127.0.0.1/cb',
      scope: 'api',
      code_challenge: 'c',
      code_challenge_method: 'S256',
      audience: null,
      expires_at: at(60_000),
      created_at: at(),
    })
    expect(await oauth.findCode(tenantB, 'the-code')).toBeUndefined()
    const results = await Promise.all([
      oauth.consumeCode(tenantA, 'the-code'),
      oauth.consumeCode(tenantA, 'the-code'),
    ])
    expect(results.sort()).toEqual([false, true])
  })

  it('rotates a refresh token for one caller only, and revokes a whole family', async () => {
    const family = uuidv7()
    const row = (token: string) => ({
      token_hash: token,
      family_id: family,
      tenant_id: tenantA,
      client_id: 'desklink-cli',
      principal_type: 'user' as const,
      principal_id: uuidv7(),
      scope: 'api offline_access',
      audience: null,
      expires_at: at(3_600_000),
      rotated_at: null,
      revoked_at: null,
      created_at: at(),
    })
    await oauth.saveRefreshToken(row(hashOpaque('first')))
    await oauth.saveRefreshToken(row(hashOpaque('second')))
    const rotations = await Promise.all([
      oauth.rotateRefreshToken(tenantA, 'first', at(1)),
      oauth.rotateRefreshToken(tenantA, 'first', at(2)),
    ])
    expect(rotations.sort()).toEqual([false, true])
    await oauth.revokeFamily(tenantA, family, at(3))
    expect((await oauth.findRefreshToken(tenantA, 'second'))?.revoked_at).toBe(at(3))
    expect(await oauth.rotateRefreshToken(tenantA, 'second', at(4))).toBe(false)
  })

  it('records a client assertion id once and refuses its replay', async () => {
    expect(await oauth.recordAssertion(tenantA, 'jti-1', at(60_000), at())).toBe(true)
    expect(await oauth.recordAssertion(tenantA, 'jti-1', at(60_000), at())).toBe(false)
    expect(await oauth.recordAssertion(tenantB, 'jti-1', at(60_000), at())).toBe(true)
  })
})
