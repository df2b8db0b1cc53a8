/**
 * Tenants and environments.
 *
 * @module
 */
import type { Kysely, Selectable } from 'kysely'

import {
  type Database,
  type EnvironmentTable,
  prepareQuery,
  type TenantTable,
} from '../storage/index.ts'

export interface TenantRecord {
  readonly id: string
  readonly slug: string
  readonly displayName: string
  readonly status: 'active' | 'deactivated'
  readonly createdAt: string
}

export interface EnvironmentRecord {
  readonly id: string
  readonly tenantId: string
  readonly name: string
  readonly description: string
  readonly createdAt: string
}

const toTenant = (row: Selectable<TenantTable>): TenantRecord => ({
  id: row.id,
  slug: row.slug,
  displayName: row.display_name,
  status: row.status,
  createdAt: row.created_at,
})

const toEnvironment = (row: Selectable<EnvironmentTable>): EnvironmentRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  name: row.name,
  description: row.description,
  createdAt: row.created_at,
})

/** Reads and writes tenants and environments; every environment query is scoped by tenant. */
export function createTenantStore(db: Kysely<Database>) {
  // Every API request resolves its token's tenant.
  const tenantBySlug = prepareQuery(
    db,
    (q, a: { slug: string }) => q.selectFrom('tenants').selectAll().where('slug', '=', a.slug),
    { cached: true },
  )
  // ...and the access rules read its environments.
  const environmentsOf = prepareQuery(
    db,
    (q, a: { tenantId: string }) =>
      q
        .selectFrom('environments')
        .selectAll()
        .where('tenant_id', '=', a.tenantId)
        .orderBy('created_at')
        .orderBy('id'),
    { cached: true },
  )
  return {
    async insertTenant(tenant: TenantRecord): Promise<void> {
      await db
        .insertInto('tenants')
        .values({
          id: tenant.id,
          slug: tenant.slug,
          display_name: tenant.displayName,
          status: tenant.status,
          created_at: tenant.createdAt,
        })
        .execute()
    },
    async findTenantById(id: string): Promise<TenantRecord | undefined> {
      const row = await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst()
      return row && toTenant(row)
    },
    async findTenantBySlug(slug: string): Promise<TenantRecord | undefined> {
      const row = await tenantBySlug.first({ slug })
      return row && toTenant(row)
    },
    async listTenants(): Promise<TenantRecord[]> {
      const rows = await db
        .selectFrom('tenants')
        .selectAll()
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toTenant)
    },
    async updateTenant(
      id: string,
      changes: { displayName?: string | undefined; status?: TenantRecord['status'] | undefined },
    ): Promise<void> {
      if (changes.displayName === undefined && changes.status === undefined) return
      await db
        .updateTable('tenants')
        .set({
          ...(changes.displayName !== undefined && { display_name: changes.displayName }),
          ...(changes.status !== undefined && { status: changes.status }),
        })
        .where('id', '=', id)
        .execute()
    },
    async countTenants(): Promise<number> {
      const row = await db
        .selectFrom('tenants')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      return Number(row.n)
    },

    async insertEnvironment(environment: EnvironmentRecord): Promise<void> {
      await db
        .insertInto('environments')
        .values({
          id: environment.id,
          tenant_id: environment.tenantId,
          name: environment.name,
          description: environment.description,
          created_at: environment.createdAt,
        })
        .execute()
    },
    async findEnvironment(tenantId: string, id: string): Promise<EnvironmentRecord | undefined> {
      const row = await db
        .selectFrom('environments')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toEnvironment(row)
    },
    async listEnvironments(tenantId: string): Promise<EnvironmentRecord[]> {
      const rows = await environmentsOf.all({ tenantId })
      return rows.map(toEnvironment)
    },
    async updateEnvironment(
      tenantId: string,
      id: string,
      changes: { name?: string | undefined; description?: string | undefined },
    ): Promise<void> {
      if (changes.name === undefined && changes.description === undefined) return
      await db
        .updateTable('environments')
        .set({
          ...(changes.name !== undefined && { name: changes.name }),
          ...(changes.description !== undefined && { description: changes.description }),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },
    async deleteEnvironment(tenantId: string, id: string): Promise<boolean> {
      const result = await db
        .deleteFrom('environments')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

export type TenantStore = ReturnType<typeof createTenantStore>
