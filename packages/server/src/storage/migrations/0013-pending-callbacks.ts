/**
 * Callbacks owed: a run with a `callbackUrl` that ended is noted here in the commit that ends
 * it, and the note goes in the commit that records the callback's outcome. A server stopped in
 * between (killed, crashed, restarted) finds what it still owes when it starts. A table of its
 * own rather than a column of the runs: runs without a callback, most of them, write nothing.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0013PendingCallbacks: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('pending_callbacks')
      .ifNotExists()
      .addColumn('run_id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text', (c) => c.notNull())
      .execute()
  },
}
