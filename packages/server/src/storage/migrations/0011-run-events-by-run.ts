/**
 * A run's events are kept in the order of their key (run, event id): the key is the only
 * index. Events are only ever read run by run, and ids are time-ordered, so this is the order
 * they are read in.
 *
 * Before, an event was a row keyed by its own id with a second index on its run: each of the
 * four events of a run touched three B-trees (on SQLite, the table, its key and that index),
 * and each touched B-tree is one more page written at commit. On SQLite the table is rebuilt
 * WITHOUT ROWID, so the key is the table: one B-tree. PostgreSQL keeps its table and swaps the
 * two indexes for the one key.
 *
 * @module
 */
import { type Kysely, type Migration, sql } from 'kysely'

import type { DialectName } from '../database.ts'

export function migration0011RunEventsByRun(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      if (dialect === 'postgres') {
        await db.schema.alterTable('run_events').dropConstraint('run_events_pkey').execute()
        await db.schema
          .alterTable('run_events')
          .addPrimaryKeyConstraint('run_events_pkey', ['run_id', 'id'])
          .execute()
        await db.schema.dropIndex('run_events_run').execute()
        return
      }
      // SQLite migrations run outside a transaction (Kysely's choice for SQLite); this one is
      // all or nothing, so a crash half way leaves the events where they were.
      await db.transaction().execute(async (trx) => {
        await trx.schema
          .createTable('run_events_by_run')
          .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('details', 'text')
          .addPrimaryKeyConstraint('run_events_by_run_pkey', ['run_id', 'id'])
          .modifyEnd(sql`without rowid`)
          .execute()
        await sql`insert into run_events_by_run (run_id, id, tenant_id, at, kind, details)
          select run_id, id, tenant_id, at, kind, details from run_events`.execute(trx)
        await trx.schema.dropTable('run_events').execute()
        await trx.schema.alterTable('run_events_by_run').renameTo('run_events').execute()
      })
    },
  }
}
