/**
 * Desktop flow connections: a target group, how the identity is obtained (a password sealed to
 * the target group, or a credential), the owner and run owner, and the last test's outcome.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0004Connections: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('connections')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) =>
        c.notNull().references('environments.id').onDelete('cascade'),
      )
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('target_group_id', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('username', 'text')
      .addColumn('sealed_password', 'text')
      .addColumn('credential_id', 'text')
      .addColumn('owner_type', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('run_owner_type', 'text', (c) => c.notNull())
      .addColumn('run_owner_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_error', 'text')
      .addColumn('os_account', 'text')
      .addColumn('last_tested_at', 'text')
      .addColumn('last_used_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createIndex('connections_target')
      .on('connections')
      .column('target_group_id')
      .execute()
  },
}
