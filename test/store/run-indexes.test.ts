/**
 * The dispatcher's questions about queued and running runs are answered from the partial
 * indexes of migration 0010, and a retried request's run from the partial key index of 0012, on
 * SQLite and PostgreSQL. Each store call's statements are taken
 * as they were run and explained with their own values: a query whose condition no longer
 * matches an index (or an index gone) leaves the database reading the whole table, and these
 * tests fail.
 */
import { type CompiledQuery, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createFlowService } from '../../packages/server/src/flows/index.ts'
import { createRunStore, type RunStore } from '../../packages/server/src/runs/run-store.ts'
import {
  migrateToLatest,
  openStorage,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { systemClock, uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

describe.each(BACKENDS)('run indexes on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  let store: RunStore
  let watching = false
  const statements: CompiledQuery[] = []

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url, {
      onQuery: (query) => {
        if (watching) statements.push(query)
      },
    })
    expect((await migrateToLatest(storage)).error).toBeUndefined()
    store = createRunStore(storage.db, uuidv7)
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  /** The plan of each statement on `runs` that `call` ran, as text. */
  async function plansOf(call: () => Promise<unknown>): Promise<string[]> {
    statements.length = 0
    watching = true
    try {
      await call()
    } finally {
      watching = false
    }
    const onRuns = statements.filter((s) => /\b(from|update|join) "runs"/.test(s.sql))
    expect(onRuns.length).toBeGreaterThan(0)
    const plans: string[] = []
    for (const statement of onRuns) plans.push(await explain(statement))
    return plans
  }

  async function explain(statement: CompiledQuery): Promise<string> {
    if (backend === 'sqlite') {
      const { rows } = await storage.db.executeQuery<{ detail: string }>({
        ...statement,
        sql: `explain query plan ${statement.sql}`,
      })
      return rows.map((r) => r.detail).join('\n')
    }
    // Tables this small are read whole whatever the indexes; with sequential scans priced out,
    // an index is used exactly when the database can prove it applies.
    return storage.db.transaction().execute(async (trx) => {
      await sql`set local enable_seqscan = off`.execute(trx)
      const { rows } = await trx.executeQuery<{ 'QUERY PLAN': string }>({
        ...statement,
        sql: `explain ${statement.sql}`,
      })
      return rows.map((r) => r['QUERY PLAN']).join('\n')
    })
  }

  const group = uuidv7()
  const machine = uuidv7()
  const cases: [string, string, () => Promise<unknown>][] = [
    ['the head of a queue', 'runs_queued', () => store.queueHead(group, 10)],
    [
      'a run’s place in its queue',
      'runs_queued',
      () =>
        store.positionOf({
          id: uuidv7(),
          target_group_id: group,
          queue_rank: 0,
          priority_rank: 1,
          requested_at: new Date().toISOString(),
        }),
    ],
    ['the targets with queued runs', 'runs_queued', () => store.groupsWithQueuedRuns()],
    [
      'queued runs past their deadline',
      'runs_queued_deadline',
      () => store.pastQueueDeadline(new Date().toISOString()),
    ],
    ['what machines hold', 'runs_running', () => store.heldBy([machine, uuidv7()])],
    ['what one machine holds', 'runs_running', () => store.onMachine(machine)],
    ['every running run’s deadlines', 'runs_running', () => store.runningDeadlines()],
    [
      'every lease renewed at start',
      'runs_running',
      () => store.renewAllLeases(new Date().toISOString()),
    ],
    [
      'a retried request’s run, by its idempotency key',
      'runs_idempotency',
      () => store.byIdempotencyKey(uuidv7(), uuidv7(), 'retry-1'),
    ],
  ]

  it.each(cases)('answers %s from %s', async (_name, index, call) => {
    for (const plan of await plansOf(call)) expect(plan).toMatch(new RegExp(`\\b${index}\\b`))
  })

  it('finds the package of a run a machine holds from the running index', async () => {
    // Only its database is used to find a package.
    const flows = createFlowService({
      db: storage.db,
      isUniqueViolation: storage.isUniqueViolation,
      clock: systemClock,
      newId: uuidv7,
      access: undefined as never,
      shares: undefined as never,
      audit: undefined as never,
    })
    const plans = await plansOf(() => flows.packageFor(uuidv7(), machine, 'f'.repeat(64)))
    for (const plan of plans) {
      expect(plan).toMatch(/\bruns_running\b/)
      expect(plan).not.toMatch(/SCAN runs\b|Seq Scan on runs\b/)
    }
  })

  it('keeps in the idempotency key index only the runs that have a key', async () => {
    // A run without a key adds nothing to walk or write there; a key stays unique.
    const definition =
      backend === 'sqlite'
        ? await sql<{ text: string }>`select sql as text from sqlite_master
            where type = 'index' and name = 'runs_idempotency'`.execute(storage.db)
        : await sql<{ text: string }>`select indexdef as text from pg_indexes
            where indexname = 'runs_idempotency'`.execute(storage.db)
    expect(definition.rows).toHaveLength(1)
    expect(definition.rows[0].text).toMatch(/^create unique index/i)
    expect(definition.rows[0].text).toMatch(/where \(?"?idempotency_key"? is not null\)?$/i)
  })

  it('finds the next deadline from the queued and the running indexes', async () => {
    const plans = (await plansOf(() => store.nextDeadline(5_000))).join('\n')
    expect(plans).toMatch(/\bruns_queued_deadline\b/)
    expect(plans).toMatch(/\bruns_running\b/)
  })
})
