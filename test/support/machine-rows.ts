/**
 * Machine and group records for store tests, and a database to store them in: migrated, with
 * one tenant and one environment to hold them.
 */
import { createIdentityStores } from '../../packages/server/src/identity/identity-stores.ts'
import {
  createMachineStore,
  DEFAULT_SETTINGS,
  type GroupRecord,
  type MachineRecord,
} from '../../packages/server/src/machines/machine-store.ts'
import { migrateToLatest, openStorage } from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { type Backend, createTestDatabase } from './backends.ts'

/** A moment `offsetMs` after a fixed epoch, as stored. */
export const at = (offsetMs = 0): string => new Date(Date.UTC(2026, 0, 1) + offsetMs).toISOString()

/** Where the records of a test go: its tenant and environment, and who owns them. */
export interface MachinePlace {
  readonly tenantId: string
  readonly environmentId: string
  readonly owner: { readonly ownerType: 'user'; readonly ownerId: string }
}

/** A migrated database of `backend` with a tenant and an environment, and its machine store. */
export async function openMachineDatabase(backend: Backend) {
  const database = await createTestDatabase(backend)
  const storage = openStorage(database.url)
  const migration = await migrateToLatest(storage)
  if (migration.error) throw migration.error
  const place: MachinePlace = {
    tenantId: uuidv7(),
    environmentId: uuidv7(),
    owner: { ownerType: 'user', ownerId: uuidv7() },
  }
  const identity = createIdentityStores(storage.db)
  await identity.tenants.insertTenant({
    id: place.tenantId,
    slug: 'machines',
    displayName: 'm',
    status: 'active',
    createdAt: at(),
  })
  await identity.tenants.insertEnvironment({
    id: place.environmentId,
    tenantId: place.tenantId,
    name: 'e',
    description: '',
    createdAt: at(),
  })
  return {
    storage,
    place,
    machines: createMachineStore(storage.db),
    async close() {
      await storage.close()
      await database.drop()
    },
  }
}

/** A group of `type` with no key yet. */
export const groupRecord = (place: MachinePlace, type: GroupRecord['type']): GroupRecord => ({
  id: uuidv7(),
  tenantId: place.tenantId,
  environmentId: place.environmentId,
  name: 'g',
  description: '',
  type,
  publicKey: null,
  keyPackage: null,
  keyCreatedAt: null,
  settings: DEFAULT_SETTINGS,
  ...place.owner,
  createdAt: at(),
})

/** A disconnected machine, never heard from, with its own group and in `groupId`. */
export const machineRecord = (
  place: MachinePlace,
  groups: { standaloneGroupId: string; groupId: string },
  changes: Partial<MachineRecord> = {},
): MachineRecord => ({
  id: uuidv7(),
  tenantId: place.tenantId,
  environmentId: place.environmentId,
  name: 'm',
  description: '',
  ...groups,
  identityPublicKey: 'k',
  hostname: 'h',
  os: 'o',
  agentVersion: '1',
  settings: DEFAULT_SETTINGS,
  sessions: [],
  connected: false,
  lastHeartbeatAt: null,
  ...place.owner,
  createdAt: at(),
  ...changes,
})
