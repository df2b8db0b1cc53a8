/**
 * Machines, machine groups (standalone and standard), one-time registration tokens, and
 * per-resource sharing.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0002Machines: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('machine_groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) =>
        c.notNull().references('environments.id').onDelete('cascade'),
      )
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text')
      .addColumn('key_package', 'text')
      .addColumn('key_created_at', 'text')
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('owner_type', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createIndex('machine_groups_env')
      .on('machine_groups')
      .columns(['tenant_id', 'environment_id'])
      .execute()

    await db.schema
      .createTable('machines')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) =>
        c.notNull().references('environments.id').onDelete('cascade'),
      )
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('standalone_group_id', 'text', (c) => c.notNull().references('machine_groups.id'))
      .addColumn('group_id', 'text', (c) => c.notNull().references('machine_groups.id'))
      .addColumn('identity_public_key', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('os', 'text', (c) => c.notNull())
      .addColumn('agent_version', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('sessions', 'text', (c) => c.notNull())
      .addColumn('connected', 'integer', (c) => c.notNull())
      .addColumn('last_heartbeat_at', 'text')
      .addColumn('owner_type', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createIndex('machines_env')
      .on('machines')
      .columns(['tenant_id', 'environment_id'])
      .execute()
    await db.schema.createIndex('machines_group').on('machines').column('group_id').execute()

    await db.schema
      .createTable('registration_tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('environment_id', 'text', (c) =>
        c.notNull().references('environments.id').onDelete('cascade'),
      )
      .addColumn('created_by_type', 'text', (c) => c.notNull())
      .addColumn('created_by_id', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .addColumn('machine_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('resource_shares')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) =>
        c.notNull().references('tenants.id').onDelete('cascade'),
      )
      .addColumn('resource_type', 'text', (c) => c.notNull())
      .addColumn('resource_id', 'text', (c) => c.notNull())
      .addColumn('principal_type', 'text', (c) => c.notNull())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('access', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('resource_shares_unique', [
        'resource_type',
        'resource_id',
        'principal_type',
        'principal_id',
      ])
      .execute()
    await db.schema
      .createIndex('resource_shares_principal')
      .on('resource_shares')
      .columns(['principal_type', 'principal_id'])
      .execute()
  },
}
