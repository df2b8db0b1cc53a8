/**
 * A run's events are keyed by (run, event id), the one index they have (migration 0011), on
 * SQLite and PostgreSQL: events stored before the migration are kept, and a run's events are
 * read from that key.
 */
import { Migrator, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createRunStore, type RunStore } from '../../packages/server/src/runs/run-store.ts'
import {
  migrateToLatest,
  openStorage,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { migrationsFor } from '../../packages/server/src/storage/migrations/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'
import { at, queuedRunRow } from '../support/run-rows.ts'

describe.each(BACKENDS)('run events on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  let store: RunStore
  const tenantId = uuidv7()
  const run = queuedRunRow(tenantId, uuidv7(), 0)

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    // The schema before events were keyed by run, with a run and its events in it.
    const migrator = new Migrator({ db: storage.db, provider: migrationsFor(storage.dialect) })
    expect((await migrator.migrateTo('0010-partial-run-indexes')).error).toBeUndefined()
    await storage.db
      .insertInto('tenants')
      .values({
        id: tenantId,
        slug: 'events',
        display_name: 'e',
        status: 'active',
        created_at: at(),
      })
      .execute()
    store = createRunStore(storage.db, uuidv7)
    await store.insert(run)
    await store.event(run, at(1), 'queued', { priority: 'normal' })
    await store.event(run, at(2), 'offered', { machineId: 'm1' })
    expect((await migrateToLatest(storage)).error).toBeUndefined()
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  it('keeps the events stored before the migration, and stores new ones', async () => {
    await store.event(run, at(3), 'started')
    const events = await store.eventsOf([run.id])
    expect(events.map((e) => [e.kind, e.at, e.details])).toEqual([
      ['queued', at(1), JSON.stringify({ priority: 'normal' })],
      ['offered', at(2), JSON.stringify({ machineId: 'm1' })],
      ['started', at(3), null],
    ])
  })

  it("reads a run's events from their key, the only index", async () => {
    const compiled = storage.db
      .selectFrom('run_events')
      .selectAll()
      .where('run_id', 'in', [run.id])
      .orderBy('at')
      .orderBy('id')
      .compile()
    if (backend === 'sqlite') {
      const { rows } = await storage.db.executeQuery<{ detail: string }>({
        ...compiled,
        sql: `explain query plan ${compiled.sql}`,
      })
      expect(rows.map((r) => r.detail).join('\n')).toMatch(/USING PRIMARY KEY \(run_id=\?\)/)
      const { rows: schema } = await sql<{ type: string; sql: string | null }>`
        select type, sql from sqlite_master where tbl_name = 'run_events'`.execute(storage.db)
      // WITHOUT ROWID: the key is the table, and no index is kept besides.
      expect(schema.filter((s) => s.type === 'index')).toEqual([])
      expect(schema.find((s) => s.type === 'table')?.sql).toMatch(/without rowid/i)
      return
    }
    const plan = await storage.db.transaction().execute(async (trx) => {
      await sql`set local enable_seqscan = off`.execute(trx)
      const { rows } = await trx.executeQuery<{ 'QUERY PLAN': string }>({
        ...compiled,
        sql: `explain ${compiled.sql}`,
      })
      return rows.map((r) => r['QUERY PLAN']).join('\n')
    })
    expect(plan).toMatch(/run_events_pkey/)
    const { rows: indexes } = await sql<{ indexname: string }>`
      select indexname from pg_indexes where tablename = 'run_events'`.execute(storage.db)
    expect(indexes.map((i) => i.indexname)).toEqual(['run_events_pkey'])
  })
})
