/**
 * Run rows for store tests: a queued run as admission stores it, with fresh ids for everything
 * the test does not care about; and a database to store them in.
 */
import type { RunRow } from '../../packages/server/src/runs/run-store.ts'
import { migrateToLatest, openStorage } from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { type Backend, createTestDatabase } from './backends.ts'

/** A moment `offsetMs` after a fixed epoch, as stored. */
export const at = (offsetMs = 0): string => new Date(Date.UTC(2026, 10, 1) + offsetMs).toISOString()

/** A queued run of `group` in `tenantId`, requested `offsetMs` after the epoch of `at`. */
export const queuedRunRow = (
  tenantId: string,
  group: string,
  offsetMs: number,
  changes: Partial<RunRow> = {},
): RunRow => ({
  id: uuidv7(),
  tenant_id: tenantId,
  environment_id: uuidv7(),
  flow_id: uuidv7(),
  flow_version_id: uuidv7(),
  connection_id: uuidv7(),
  target_group_id: group,
  caller_type: 'user',
  caller_id: uuidv7(),
  connection_owner_id: uuidv7(),
  run_owner_type: 'user',
  run_owner_id: uuidv7(),
  run_mode: 'unattended',
  priority: 'normal',
  priority_rank: 1,
  status: 'Queued',
  sealed_inputs: 'sealed',
  shown_inputs: '{}',
  timeout_seconds: 600,
  callback_url: null,
  idempotency_key: null,
  parent_run_id: null,
  requested_at: at(offsetMs),
  moved_to_top_at: null,
  queue_rank: 0,
  queue_deadline: at(offsetMs + 3_600_000),
  machine_id: null,
  offered_at: null,
  lease_expires_at: null,
  started_at: null,
  finished_at: null,
  os_account: 'runner',
  exit_code: null,
  outputs: null,
  error: null,
  refusals: null,
  ...changes,
})

/** A migrated database of `backend` with one tenant in it, for store tests of runs. */
export async function openRunDatabase(backend: Backend, tenantId: string) {
  const database = await createTestDatabase(backend)
  const storage = openStorage(database.url)
  const migrated = await migrateToLatest(storage)
  if (migrated.error) throw migrated.error
  await storage.db
    .insertInto('tenants')
    .values({
      id: tenantId,
      slug: `t-${tenantId}`,
      display_name: 'runs',
      status: 'active',
      created_at: at(),
    })
    .execute()
  return {
    storage,
    async close() {
      await storage.close()
      await database.drop()
    },
  }
}
