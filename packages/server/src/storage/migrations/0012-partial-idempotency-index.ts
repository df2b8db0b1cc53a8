/**
 * The idempotency key index holds only runs that have a key.
 *
 * Most runs are started without one, yet each had an entry in the index (with a null key, which
 * is never unique-checked anyway): one more B-tree to walk and one more page written at every
 * run's insert, for nothing any lookup could find. A partial index keeps the same uniqueness for
 * keys that exist. A lookup by key names the key (`idempotency_key = ?`), which both databases
 * take as proof that it is not null, so the index still serves it.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'
import { sql } from 'kysely'

export const migration0012PartialIdempotencyIndex: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // SQLite migrations run outside a transaction: after a crash between the two steps, the
    // migration runs again on a database that has no such index.
    await db.schema.dropIndex('runs_idempotency').ifExists().execute()
    await db.schema
      .createIndex('runs_idempotency')
      .on('runs')
      .columns(['tenant_id', 'caller_id', 'idempotency_key'])
      .unique()
      .where(sql.ref('idempotency_key'), 'is not', null)
      .execute()
  },
}
