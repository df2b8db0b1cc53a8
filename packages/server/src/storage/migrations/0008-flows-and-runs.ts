/**
 * Desktop flow packages (versions addressed by content hash) and runs: the queue per target
 * group, the machine that ran each run, its timings, outcome and queue events.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0008FlowsAndRuns: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('desktop_flows')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) =>
        c.notNull().references('environments.id').onDelete('cascade'),
      )
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('owner_type', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('current_version', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('desktop_flows_name', ['environment_id', 'name'])
      .execute()
    await db.schema
      .createTable('flow_versions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('flow_id', 'text', (c) =>
        c.notNull().references('desktop_flows.id').onDelete('cascade'),
      )
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('content_hash', 'text', (c) => c.notNull())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('files', 'text', (c) => c.notNull())
      .addColumn('size_bytes', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('flow_versions_version', ['flow_id', 'version'])
      .execute()
    await db.schema
      .createIndex('flow_versions_hash')
      .on('flow_versions')
      .column('content_hash')
      .execute()

    await db.schema
      .createTable('runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) => c.notNull())
      .addColumn('flow_id', 'text', (c) => c.notNull())
      .addColumn('flow_version_id', 'text', (c) => c.notNull())
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('target_group_id', 'text', (c) => c.notNull())
      .addColumn('caller_type', 'text', (c) => c.notNull())
      .addColumn('caller_id', 'text', (c) => c.notNull())
      .addColumn('connection_owner_id', 'text', (c) => c.notNull())
      .addColumn('run_owner_type', 'text', (c) => c.notNull())
      .addColumn('run_owner_id', 'text', (c) => c.notNull())
      .addColumn('run_mode', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('priority_rank', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('sealed_inputs', 'text', (c) => c.notNull())
      .addColumn('shown_inputs', 'text', (c) => c.notNull())
      .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
      .addColumn('callback_url', 'text')
      .addColumn('idempotency_key', 'text')
      .addColumn('parent_run_id', 'text')
      .addColumn('requested_at', 'text', (c) => c.notNull())
      .addColumn('moved_to_top_at', 'text')
      .addColumn('queue_deadline', 'text', (c) => c.notNull())
      .addColumn('machine_id', 'text')
      .addColumn('offered_at', 'text')
      .addColumn('lease_expires_at', 'text')
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('os_account', 'text')
      .addColumn('exit_code', 'integer')
      .addColumn('outputs', 'text')
      .addColumn('error', 'text')
      .addColumn('refusals', 'text')
      .execute()
    await db.schema
      .createIndex('runs_queue')
      .on('runs')
      .columns(['target_group_id', 'status'])
      .execute()
    // The dispatcher asks what a machine holds, what is due, and what waits, many times a second.
    await db.schema
      .createIndex('runs_machine')
      .on('runs')
      .columns(['machine_id', 'status'])
      .execute()
    await db.schema
      .createIndex('runs_status_deadline')
      .on('runs')
      .columns(['status', 'queue_deadline'])
      .execute()
    await db.schema
      .createIndex('runs_environment')
      .on('runs')
      .columns(['environment_id', 'requested_at'])
      .execute()
    await db.schema
      .createIndex('runs_idempotency')
      .on('runs')
      .columns(['tenant_id', 'caller_id', 'idempotency_key'])
      .unique()
      .execute()
    await db.schema
      .createIndex('runs_connection')
      .on('runs')
      .columns(['connection_id', 'requested_at'])
      .execute()

    await db.schema
      .createTable('run_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('details', 'text')
      .execute()
    await db.schema.createIndex('run_events_run').on('run_events').column('run_id').execute()
    // JSON overrides of the run limits (queue size, throttle, queue timeouts); absent = defaults.
    await db.schema.alterTable('environments').addColumn('run_settings', 'text').execute()
  },
}
