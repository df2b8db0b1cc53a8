/**
 * The machine store's concurrency promises, on both databases: a registration token serves
 * one registration, and only one machine creates a group's key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createIdentityStores } from '../../packages/server/src/identity/identity-stores.ts'
import {
  createMachineStore,
  DEFAULT_SETTINGS,
  type MachineStore,
} from '../../packages/server/src/machines/machine-store.ts'
import {
  migrateToLatest,
  openStorage,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

const at = (offsetMs = 0) => new Date(Date.UTC(2026, 0, 1) + offsetMs).toISOString()

describe.each(BACKENDS)('machine store on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  let machines: MachineStore
  const tenantId = uuidv7()
  const environmentId = uuidv7()
  const owner = { ownerType: 'user' as const, ownerId: uuidv7() }

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    expect((await migrateToLatest(storage)).error).toBeUndefined()
    const identity = createIdentityStores(storage.db)
    await identity.tenants.insertTenant({
      id: tenantId,
      slug: 'machines',
      displayName: 'm',
      status: 'active',
      createdAt: at(),
    })
    await identity.tenants.insertEnvironment({
      id: environmentId,
      tenantId,
      name: 'e',
      description: '',
      createdAt: at(),
    })
    machines = createMachineStore(storage.db)
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  const group = (type: 'standalone' | 'standard') => ({
    id: uuidv7(),
    tenantId,
    environmentId,
    name: 'g',
    description: '',
    type,
    publicKey: null,
    keyPackage: null,
    keyCreatedAt: null,
    settings: DEFAULT_SETTINGS,
    ...owner,
    createdAt: at(),
  })

  it('lets a registration token serve one registration only, and never after it expires', async () => {
    const token = {
      token_hash: uuidv7(),
      tenant_id: tenantId,
      environment_id: environmentId,
      created_by_type: 'user' as const,
      created_by_id: owner.ownerId,
      expires_at: at(3_600_000),
      used_at: null,
      machine_id: null,
      created_at: at(),
    }
    await machines.insertRegistrationToken(token)
    const uses = await Promise.all([
      machines.useRegistrationToken(token.token_hash, uuidv7(), at(1)),
      machines.useRegistrationToken(token.token_hash, uuidv7(), at(2)),
    ])
    expect(uses.sort()).toEqual([false, true])
    const late = { ...token, token_hash: uuidv7() }
    await machines.insertRegistrationToken(late)
    expect(await machines.useRegistrationToken(late.token_hash, uuidv7(), at(3_600_001))).toBe(
      false,
    )
  })

  it('lets only the first machine set the group key', async () => {
    const g = group('standard')
    await machines.insertGroup(g)
    const results = await Promise.all([
      machines.setGroupKeyIfAbsent(tenantId, g.id, 'key-one', 'package-one', at()),
      machines.setGroupKeyIfAbsent(tenantId, g.id, 'key-two', 'package-two', at()),
    ])
    expect(results.sort()).toEqual([false, true])
    const stored = await machines.findGroup(tenantId, g.id)
    expect(['key-one', 'key-two']).toContain(stored?.publicKey)
    expect(stored?.keyPackage).toBe(stored?.publicKey === 'key-one' ? 'package-one' : 'package-two')
  })

  it('counts members and lists only standard groups', async () => {
    const standalone = group('standalone')
    const standard = group('standard')
    await machines.insertGroup(standalone)
    await machines.insertGroup(standard)
    await machines.insertMachine({
      id: uuidv7(),
      tenantId,
      environmentId,
      name: 'm',
      description: '',
      standaloneGroupId: standalone.id,
      groupId: standard.id,
      identityPublicKey: 'k',
      hostname: 'h',
      os: 'o',
      agentVersion: '1',
      settings: DEFAULT_SETTINGS,
      sessions: [],
      connected: false,
      lastHeartbeatAt: null,
      ...owner,
      createdAt: at(),
    })
    expect(await machines.countMembers(tenantId, standard.id)).toBe(1)
    expect((await machines.listGroups(tenantId)).every((g) => g.type === 'standard')).toBe(true)
    expect(await machines.findGroup(uuidv7(), standard.id)).toBeUndefined()
  })
})
