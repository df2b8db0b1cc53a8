/**
 * The run indexes the dispatcher walks hold only the runs they are about: the queue order and
 * the queue deadlines only queued runs, what machines hold only running ones.
 *
 * A run changes status three times (queued, offered, ended); with whole-table indexes each
 * change moved its entry within every index that names the status, and each moved entry is a
 * page written at commit. Partial indexes stay as small as the queues and the work in progress,
 * whatever the history, and a run that ends only leaves the one it was in. Queries name the
 * status as a literal (`sql.lit`) so both databases can prove a partial index applies.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'
import { sql } from 'kysely'

export const migration0010PartialRunIndexes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createIndex('runs_queued')
      .on('runs')
      .columns(['target_group_id', 'queue_rank', 'priority_rank', 'requested_at', 'id'])
      .where(sql.ref('status'), '=', sql.lit('Queued'))
      .execute()
    await db.schema.dropIndex('runs_queue_order').execute()
    await db.schema
      .createIndex('runs_queued_deadline')
      .on('runs')
      .column('queue_deadline')
      .where(sql.ref('status'), '=', sql.lit('Queued'))
      .execute()
    await db.schema.dropIndex('runs_status_deadline').execute()
    await db.schema
      .createIndex('runs_running')
      .on('runs')
      .columns(['machine_id', 'run_mode', 'os_account', 'id'])
      .where(sql.ref('status'), '=', sql.lit('Running'))
      .execute()
    await db.schema.dropIndex('runs_held').execute()
  },
}
