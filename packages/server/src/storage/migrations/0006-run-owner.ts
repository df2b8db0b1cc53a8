/**
 * Connections remember whether their run owner was set explicitly (a service principal): only
 * such connections may be shared, and the run owner can then change but never be removed.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0006RunOwner: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('connections')
      .addColumn('run_owner_explicit', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },
}
