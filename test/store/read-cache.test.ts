/**
 * Reads kept in memory (`prepareQuery`'s `cached`), on real databases. On SQLite, the file the
 * server alone writes, a kept read is answered again while no write through the handle touched
 * its tables; any such write (in or out of a transaction, committed or rolled back, a delete
 * elsewhere that may cascade, raw SQL) makes the next read go to the database, as do two
 * seconds. A change made behind the handle's back shows that an answer came from memory. On
 * PostgreSQL, which several replicas may write, nothing is kept.
 */
import BetterSqlite3 from 'better-sqlite3'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  migrateToLatest,
  openStorage,
  prepareQuery,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { UNREFERENCED_TABLES } from '../../packages/server/src/storage/schema.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

describe.each(BACKENDS)('reads kept in memory on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  /** Changes a tenant's name behind the handle's back: another connection, or pool. */
  let behindTheBack: (id: string, name: string) => Promise<void>
  let closeOther: () => Promise<void>

  const tenantName = () =>
    prepareQuery(
      storage.db,
      (q, a: { id: string }) =>
        q.selectFrom('tenants').select('display_name').where('id', '=', a.id),
      { cached: true },
    )
  const addTenant = async (name: string) => {
    const id = uuidv7()
    await storage.db
      .insertInto('tenants')
      .values({
        id,
        slug: `t-${id}`,
        display_name: name,
        status: 'active',
        created_at: new Date().toISOString(),
      })
      .execute()
    return id
  }
  const nameOf = async (query: ReturnType<typeof tenantName>, id: string) =>
    (await query.first({ id }))?.display_name

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    expect((await migrateToLatest(storage)).error).toBeUndefined()
    if (backend === 'sqlite') {
      const other = new BetterSqlite3(database.url)
      other.pragma('busy_timeout = 5000')
      const rename = other.prepare('update tenants set display_name = ? where id = ?')
      behindTheBack = (id, name) => {
        rename.run(name, id)
        return Promise.resolve()
      }
      closeOther = () => {
        other.close()
        return Promise.resolve()
      }
    } else {
      const other = openStorage(database.url)
      behindTheBack = async (id, name) => {
        await other.db
          .updateTable('tenants')
          .set({ display_name: name })
          .where('id', '=', id)
          .execute()
      }
      closeOther = () => other.close()
    }
  })
  afterAll(async () => {
    await closeOther?.()
    await storage?.close()
    await database?.drop()
  })

  it.runIf(backend === 'sqlite')(
    'answers again from memory while no write through the handle touched the table',
    async () => {
      const query = tenantName()
      const id = await addTenant('first')
      expect(await nameOf(query, id)).toBe('first')
      await behindTheBack(id, 'changed behind its back')
      expect(await nameOf(query, id)).toBe('first')
      // A write to another table leaves it kept.
      await storage.db
        .updateTable('environments')
        .set({ name: 'unrelated' })
        .where('id', '=', 'none')
        .execute()
      expect(await nameOf(query, id)).toBe('first')
      // So does a delete from a table no foreign key points at: nothing cascades from it.
      await storage.db.deleteFrom('run_events').where('run_id', '=', 'none').execute()
      expect(await nameOf(query, id)).toBe('first')
      // Rows kept are frozen: a caller cannot change what the next one gets.
      const row = await query.first({ id })
      expect(Object.isFrozen(row)).toBe(true)
    },
  )

  it.runIf(backend === 'sqlite')(
    'reads again after any write to the table through the handle',
    async () => {
      const query = tenantName()
      const id = await addTenant('first')
      const other = await addTenant('other')
      const fresh = async (name: string) => {
        await behindTheBack(id, name)
        return nameOf(query, id)
      }

      expect(await nameOf(query, id)).toBe('first')
      // An update of another row of the table, outside a transaction.
      await storage.db
        .updateTable('tenants')
        .set({ display_name: 'other, renamed' })
        .where('id', '=', other)
        .execute()
      expect(await fresh('after an update')).toBe('after an update')

      // Inside a transaction: not kept from inside it, read again once it committed.
      await storage.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('tenants')
          .set({ display_name: 'in a transaction' })
          .where('id', '=', id)
          .execute()
        expect(await query.first({ id }, trx)).toEqual({ display_name: 'in a transaction' })
      })
      expect(await nameOf(query, id)).toBe('in a transaction')

      // A rolled-back transaction: what it wrote is never answered.
      await expect(
        storage.db.transaction().execute(async (trx) => {
          await trx
            .updateTable('tenants')
            .set({ display_name: 'rolled back' })
            .where('id', '=', id)
            .execute()
          expect(await query.first({ id }, trx)).toEqual({ display_name: 'rolled back' })
          throw new Error('roll back')
        }),
      ).rejects.toThrow('roll back')
      expect(await nameOf(query, id)).toBe('in a transaction')

      // A delete anywhere may cascade: everything is read again.
      await storage.db.deleteFrom('audit_events').where('id', '=', 'none').execute()
      expect(await fresh('after a delete elsewhere')).toBe('after a delete elsewhere')

      // Raw SQL names no table the handle can see: everything is read again.
      await sql`update environments set name = name where id = 'none'`.execute(storage.db)
      expect(await fresh('after raw SQL')).toBe('after raw SQL')

      // A kept "no such row" goes when the row is inserted.
      const missing = uuidv7()
      expect(await nameOf(query, missing)).toBeUndefined()
      await storage.db
        .insertInto('tenants')
        .values({
          id: missing,
          slug: `t-${missing}`,
          display_name: 'inserted',
          status: 'active',
          created_at: new Date().toISOString(),
        })
        .execute()
      expect(await nameOf(query, missing)).toBe('inserted')

      // Prepared writes are seen too.
      const rename = prepareQuery(storage.db, (q, a: { id: string; name: string }) =>
        q.updateTable('tenants').set({ display_name: a.name }).where('id', '=', a.id),
      )
      await rename.all({ id: other, name: 'prepared' })
      expect(await fresh('after a prepared write')).toBe('after a prepared write')
    },
  )

  it('names as unreferenced only tables that no foreign key points at', async () => {
    const referenced =
      backend === 'sqlite'
        ? await sql<{ name: string }>`select distinct f."table" as name
            from sqlite_master m, pragma_foreign_key_list(m.name) f
            where m.type = 'table'`.execute(storage.db)
        : await sql<{ name: string }>`select distinct u.table_name as name
            from information_schema.referential_constraints r
            join information_schema.constraint_column_usage u
              on u.constraint_name = r.unique_constraint_name`.execute(storage.db)
    const names = referenced.rows.map((row) => row.name)
    // The query sees the foreign keys there are: the tenants table is referenced everywhere.
    expect(names).toContain('tenants')
    for (const table of UNREFERENCED_TABLES) expect(names, table).not.toContain(table)
  })

  it('refuses to keep a read whose tables it cannot see', () => {
    expect(() =>
      prepareQuery(
        storage.db,
        (q, a: { id: string }) =>
          q
            .selectFrom('tenants')
            .select(sql<string>`(select count(*) from users)`.as('users'))
            .where('id', '=', a.id),
        { cached: true },
      ),
    ).toThrow(/must name its tables/)
  })

  it.runIf(backend === 'sqlite')('trusts what it kept for two seconds at most', async () => {
    const query = tenantName()
    const id = await addTenant('first')
    expect(await nameOf(query, id)).toBe('first')
    await behindTheBack(id, 'later')
    expect(await nameOf(query, id)).toBe('first')
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    expect(await nameOf(query, id)).toBe('later')
  })

  it.runIf(backend === 'postgres')('keeps nothing on a database replicas share', async () => {
    const query = tenantName()
    const id = await addTenant('first')
    expect(await nameOf(query, id)).toBe('first')
    await behindTheBack(id, 'written by another replica')
    expect(await nameOf(query, id)).toBe('written by another replica')
  })
})
