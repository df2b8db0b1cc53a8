/**
 * Prepared queries on real databases (SQLite and PostgreSQL): compiled once, each call binds its
 * own values in the right places next to the query's constants, inside a transaction when asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  migrateToLatest,
  openStorage,
  prepareQuery,
  type StorageHandle,
} from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS, createTestDatabase, type TestDatabase } from '../support/backends.ts'

describe.each(BACKENDS)('prepared queries on %s', (backend) => {
  let database: TestDatabase
  let storage: StorageHandle
  const prepared = () => ({
    addTenant: prepareQuery(storage.db, (q, a: { id: string; slug: string; status: string }) =>
      q.insertInto('tenants').values({
        id: a.id,
        slug: a.slug,
        display_name: 'prepared',
        status: a.status as 'active',
        created_at: new Date(0).toISOString(),
      }),
    ),
    // A constant ('prepared') between two values, so values cannot shift into its place.
    tenant: prepareQuery(storage.db, (q, a: { slug: string; status: string }) =>
      q
        .selectFrom('tenants')
        .select(['id', 'slug', 'status'])
        .where('slug', '=', a.slug)
        .where('display_name', '=', 'prepared')
        .where('status', '=', a.status as 'active'),
    ),
  })

  beforeAll(async () => {
    database = await createTestDatabase(backend)
    storage = openStorage(database.url)
    expect((await migrateToLatest(storage)).error).toBeUndefined()
  })
  afterAll(async () => {
    await storage.close()
    await database.drop()
  })

  it('binds each call its own values, around the constants of the query', async () => {
    const { addTenant, tenant } = prepared()
    const [one, two] = [uuidv7(), uuidv7()]
    await addTenant.all({ id: one, slug: `one-${one}`, status: 'active' })
    await addTenant.all({ id: two, slug: `two-${two}`, status: 'deactivated' })
    expect(await tenant.first({ slug: `one-${one}`, status: 'active' })).toEqual({
      id: one,
      slug: `one-${one}`,
      status: 'active',
    })
    expect(await tenant.first({ slug: `two-${two}`, status: 'deactivated' })).toMatchObject({
      id: two,
    })
    expect(await tenant.first({ slug: `two-${two}`, status: 'active' })).toBeUndefined()
    expect(await tenant.all({ slug: 'nobody', status: 'active' })).toEqual([])
  })

  it('runs inside a transaction when given one', async () => {
    const { addTenant, tenant } = prepared()
    const id = uuidv7()
    const slug = `rolled-back-${id}`
    await expect(
      storage.db.transaction().execute(async (trx) => {
        await addTenant.all({ id, slug, status: 'active' }, trx)
        // Visible inside the transaction...
        expect(await tenant.first({ slug, status: 'active' }, trx)).toMatchObject({ id })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    // ...and gone with it.
    expect(await tenant.first({ slug, status: 'active' })).toBeUndefined()
  })
})
