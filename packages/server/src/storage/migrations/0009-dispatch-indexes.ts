/**
 * Indexes for the questions asked on every run, each answered from the index alone:
 * - the head of a target's queue in queue order, and a run's place in it: walked in index
 *   order and stopped early, however long the queue (this replaces the index on target and
 *   status, its prefix);
 * - what a machine holds, by run mode and OS account (placement), replacing the index on
 *   machine and status, its prefix;
 * - which machine a standalone group belongs to (the run-owner check): without an index that
 *   question reads every machine of every tenant.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0009DispatchIndexes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createIndex('runs_queue_order')
      .on('runs')
      .columns([
        'target_group_id',
        'status',
        'moved_to_top_at',
        'priority_rank',
        'requested_at',
        'id',
      ])
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
