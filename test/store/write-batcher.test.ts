/**
 * Group commit on real databases (SQLite and PostgreSQL): writes asked for in one turn share a
 * transaction, each caller gets its own result once it is stored, and a write that fails takes
 * nothing else down with it, unless the commit itself failed or the database could not be used
 * (then none is tried again).
 */
import BetterSqlite3 from 'better-sqlite3'
import { sql, type Transaction } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  createWriteBatcher,
  type Database,
  migrateToLatest,
  openStorage,
  type StorageHandle,
  type WriteBatcher,
} from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

describe.each(BACKENDS)('the write batcher on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  let writes: WriteBatcher

  const addTenant = (trx: Transaction<Database>, slug: string) =>
    trx
      .insertInto('tenants')
      .values({
        id: uuidv7(),
        slug,
        display_name: slug,
        status: 'active',
        created_at: new Date().toISOString(),
      })
      .execute()
  const tenantExists = async (slug: string) =>
    (await storage.db
      .selectFrom('tenants')
      .select('id')
      .where('slug', '=', slug)
      .executeTakeFirst()) !== undefined

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    expect((await migrateToLatest(storage)).error).toBeUndefined()
    writes = createWriteBatcher(storage.db, { isUnavailable: storage.isUnavailable })
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  it('runs the writes of one turn in one transaction, and later ones in another', async () => {
    const seen: Transaction<Database>[] = []
    const note = (trx: Transaction<Database>) => {
      seen.push(trx)
      return Promise.resolve(seen.length)
    }
    const together = await Promise.all([writes.write(note), writes.write(note), writes.write(note)])
    expect(together).toEqual([1, 2, 3])
    expect(new Set(seen).size).toBe(1)
    await writes.write(note)
    expect(new Set(seen).size).toBe(2)
  })

  it('settles each write only once it is committed', async () => {
    const slug = `batch-${uuidv7()}`
    await writes.write((trx) => addTenant(trx, slug))
    // Read outside the batch's transaction: the row is there as soon as the write settled.
    expect(await tenantExists(slug)).toBe(true)
  })

  it('keeps the other writes of a batch when one of them fails', async () => {
    const taken = `taken-${uuidv7()}`
    await writes.write((trx) => addTenant(trx, taken))
    const first = `first-${uuidv7()}`
    const third = `third-${uuidv7()}`
    const outcomes = await Promise.allSettled([
      writes.write((trx) => addTenant(trx, first)),
      writes.write((trx) => addTenant(trx, taken)), // the slug is unique: this one fails
      writes.write((trx) => addTenant(trx, third)),
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(storage.isUniqueViolation((outcomes[1] as PromiseRejectedResult).reason)).toBe(true)
    expect(await tenantExists(first)).toBe(true)
    expect(await tenantExists(third)).toBe(true)
    const count = await storage.db
      .selectFrom('tenants')
      .select(sql<number>`count(*)`.as('n'))
      .where('slug', '=', taken)
      .executeTakeFirst()
    expect(Number(count?.n)).toBe(1)
  })

  it('tells each write of a batch whose commit failed, and tries none of them again', async () => {
    // A constraint checked at commit: the writes run, the commit fails. (A lost connection
    // fails there too, when PostgreSQL may have committed: trying again could store twice.)
    await sql`create table commit_checks (
      id text primary key,
      tenant_id text references tenants (id) deferrable initially deferred
    )`.execute(storage.db)
    const slug = `kept-${uuidv7()}`
    let calls = 0
    const outcomes = await Promise.allSettled([
      writes.write(async (trx) => {
        calls += 1
        await addTenant(trx, slug)
      }),
      writes.write((trx) =>
        sql`insert into commit_checks values (${uuidv7()}, ${'no-such-tenant'})`.execute(trx),
      ),
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    expect(calls).toBe(1)
    expect(await tenantExists(slug)).toBe(false)
  })

  it.skipIf(backend !== 'sqlite')(
    'tells each write of a batch the database refused as busy, without trying each again',
    async () => {
      // Another process holds the file's write lock past the busy timeout.
      const file = database.files[0]
      const holder = new BetterSqlite3(file)
      await sql`pragma busy_timeout = 100`.execute(storage.db)
      holder.exec('begin immediate')
      const calls = [0, 0, 0]
      try {
        const outcomes = await Promise.allSettled(
          calls.map((_, i) =>
            writes.write(async (trx) => {
              calls[i] += 1
              await addTenant(trx, `busy-${i}-${uuidv7()}`)
            }),
          ),
        )
        expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
        expect(storage.isUnavailable((outcomes[0] as PromiseRejectedResult).reason)).toBe(true)
        // The first write met the lock; none was tried again alone.
        expect(calls).toEqual([1, 0, 0])
      } finally {
        holder.exec('rollback')
        holder.close()
        await sql`pragma busy_timeout = 5000`.execute(storage.db)
      }
    },
  )
})
