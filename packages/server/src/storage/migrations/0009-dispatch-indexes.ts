/**
 * The queue order as one ascending key, and indexes for the questions asked on every run:
 * - `runs.queue_rank`: 0, or minus the time of the move (epoch ms) for a run moved to the top,
 *   so that (queue_rank, priority_rank, requested_at, id) is the queue order;
 * - the head of a target's queue, and a run's place in it: walked in index order and stopped
 *   early, however long the queue (this replaces the index on target and status, its prefix);
 * - what a machine holds, by run mode and OS account (placement), replacing the index on
 *   machine and status, its prefix;
 * - which machine a standalone group belongs to (the run-owner check): without an index that
 *   question reads every machine of every tenant.
 *
 * @module
 */
import { type Kysely, type Migration, sql } from 'kysely'

export const migration0009DispatchIndexes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // Epoch milliseconds fit a double exactly, and come back as numbers on both databases.
    await db.schema
      .alterTable('runs')
      .addColumn('queue_rank', 'double precision', (c) => c.notNull().defaultTo(0))
      .execute()
    const moved = await sql<{ id: string; moved_to_top_at: string }>`
      select id, moved_to_top_at from runs where moved_to_top_at is not null`.execute(db)
    for (const run of moved.rows)
      await sql`update runs set queue_rank = ${-Date.parse(run.moved_to_top_at)} where id = ${run.id}`.execute(
        db,
      )
    await db.schema
      .createIndex('runs_queue_order')
      .on('runs')
      .columns(['target_group_id', 'status', 'queue_rank', 'priority_rank', 'requested_at', 'id'])
      .execute()
    await db.schema.dropIndex('runs_queue').execute()
    await db.schema
      .createIndex('runs_held')
      .on('runs')
      .columns(['machine_id', 'status', 'run_mode', 'os_account'])
      .execute()
    await db.schema.dropIndex('runs_machine').execute()
    await db.schema
      .createIndex('machines_standalone_group')
      .on('machines')
      .column('standalone_group_id')
      .execute()
  },
}
