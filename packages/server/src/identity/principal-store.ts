/**
 * Users, service principals and the credentials service principals authenticate with. Every
 * query takes the tenant id: rows of another tenant are invisible here.
 *
 * @module
 */
import type { Kysely, Selectable } from 'kysely'

import {
  type Database,
  prepareQuery,
  type ServicePrincipalTable,
  type SpCredentialTable,
  type UserTable,
} from '../storage/index.ts'

export type PrincipalStatus = 'active' | 'deactivated'

export interface UserRecord {
  readonly id: string
  readonly tenantId: string
  readonly username: string
  readonly displayName: string
  readonly passwordHash: string
  readonly status: PrincipalStatus
  readonly isTenantAdmin: boolean
  readonly isPlatformAdmin: boolean
  readonly createdAt: string
  readonly updatedAt: string
}

export interface ServicePrincipalRecord {
  readonly id: string
  readonly tenantId: string
  readonly name: string
  readonly description: string
  readonly status: PrincipalStatus
  readonly createdAt: string
  readonly updatedAt: string
}

export interface SpCredentialRecord {
  readonly id: string
  readonly tenantId: string
  readonly servicePrincipalId: string
  readonly kind: 'secret' | 'certificate'
  readonly secretHash: string | null
  readonly publicJwk: string | null
  readonly hint: string
  readonly expiresAt: string | null
  readonly createdAt: string
}

const toUser = (row: Selectable<UserTable>): UserRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  username: row.username,
  displayName: row.display_name,
  passwordHash: row.password_hash,
  status: row.status,
  isTenantAdmin: Number(row.is_tenant_admin) === 1,
  isPlatformAdmin: Number(row.is_platform_admin) === 1,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

const toServicePrincipal = (row: Selectable<ServicePrincipalTable>): ServicePrincipalRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  name: row.name,
  description: row.description,
  status: row.status,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

const toCredential = (row: Selectable<SpCredentialTable>): SpCredentialRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  servicePrincipalId: row.service_principal_id,
  kind: row.kind,
  secretHash: row.secret_hash,
  publicJwk: row.public_jwk,
  hint: row.hint,
  expiresAt: row.expires_at,
  createdAt: row.created_at,
})

export interface UserChanges {
  displayName?: string | undefined
  status?: PrincipalStatus | undefined
  isTenantAdmin?: boolean | undefined
  passwordHash?: string | undefined
}

export function createPrincipalStore(db: Kysely<Database>) {
  // Every API request of a user loads the user.
  const userById = prepareQuery(
    db,
    (q, a: { tenantId: string; id: string }) =>
      q.selectFrom('users').selectAll().where('tenant_id', '=', a.tenantId).where('id', '=', a.id),
    { cached: true },
  )
  return {
    /** True when a user or service principal with this id exists in the tenant. */
    async principalExists(
      tenantId: string,
      type: 'user' | 'servicePrincipal',
      id: string,
    ): Promise<boolean> {
      const table = type === 'user' ? 'users' : 'service_principals'
      const row = await db
        .selectFrom(table)
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row !== undefined
    },
    async insertUser(user: UserRecord): Promise<void> {
      await db
        .insertInto('users')
        .values({
          id: user.id,
          tenant_id: user.tenantId,
          username: user.username,
          display_name: user.displayName,
          password_hash: user.passwordHash,
          status: user.status,
          is_tenant_admin: user.isTenantAdmin ? 1 : 0,
          is_platform_admin: user.isPlatformAdmin ? 1 : 0,
          created_at: user.createdAt,
          updated_at: user.updatedAt,
        })
        .execute()
    },
    async findUser(tenantId: string, id: string): Promise<UserRecord | undefined> {
      const row = await userById.first({ tenantId, id })
      return row && toUser(row)
    },
    async findUserByUsername(tenantId: string, username: string): Promise<UserRecord | undefined> {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('username', '=', username)
        .executeTakeFirst()
      return row && toUser(row)
    },
    async listUsers(tenantId: string): Promise<UserRecord[]> {
      const rows = await db
        .selectFrom('users')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('username')
        .execute()
      return rows.map(toUser)
    },
    async countActiveTenantAdmins(tenantId: string): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('status', '=', 'active')
        .where('is_tenant_admin', '=', 1)
        .executeTakeFirstOrThrow()
      return Number(row.n)
    },
    async updateUser(
      tenantId: string,
      id: string,
      changes: UserChanges,
      updatedAt: string,
    ): Promise<void> {
      await db
        .updateTable('users')
        .set({
          updated_at: updatedAt,
          ...(changes.displayName !== undefined && { display_name: changes.displayName }),
          ...(changes.status !== undefined && { status: changes.status }),
          ...(changes.isTenantAdmin !== undefined && {
            is_tenant_admin: changes.isTenantAdmin ? 1 : 0,
          }),
          ...(changes.passwordHash !== undefined && { password_hash: changes.passwordHash }),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },

    async insertServicePrincipal(sp: ServicePrincipalRecord): Promise<void> {
      await db
        .insertInto('service_principals')
        .values({
          id: sp.id,
          tenant_id: sp.tenantId,
          name: sp.name,
          description: sp.description,
          status: sp.status,
          created_at: sp.createdAt,
          updated_at: sp.updatedAt,
        })
        .execute()
    },
    async findServicePrincipal(
      tenantId: string,
      id: string,
    ): Promise<ServicePrincipalRecord | undefined> {
      const row = await db
        .selectFrom('service_principals')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toServicePrincipal(row)
    },
    async listServicePrincipals(tenantId: string): Promise<ServicePrincipalRecord[]> {
      const rows = await db
        .selectFrom('service_principals')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('name')
        .execute()
      return rows.map(toServicePrincipal)
    },
    async updateServicePrincipal(
      tenantId: string,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        status?: PrincipalStatus | undefined
      },
      updatedAt: string,
    ): Promise<void> {
      await db
        .updateTable('service_principals')
        .set({
          updated_at: updatedAt,
          ...(changes.name !== undefined && { name: changes.name }),
          ...(changes.description !== undefined && { description: changes.description }),
          ...(changes.status !== undefined && { status: changes.status }),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },
    async deleteServicePrincipal(tenantId: string, id: string): Promise<boolean> {
      const result = await db.transaction().execute(async (tx) => {
        await tx
          .deleteFrom('role_assignments')
          .where('tenant_id', '=', tenantId)
          .where('principal_type', '=', 'servicePrincipal')
          .where('principal_id', '=', id)
          .execute()
        await tx
          .updateTable('refresh_tokens')
          .set({ revoked_at: new Date().toISOString() })
          .where('tenant_id', '=', tenantId)
          .where('principal_id', '=', id)
          .execute()
        return tx
          .deleteFrom('service_principals')
          .where('tenant_id', '=', tenantId)
          .where('id', '=', id)
          .executeTakeFirst()
      })
      return Number(result.numDeletedRows) > 0
    },

    async insertCredential(credential: SpCredentialRecord): Promise<void> {
      await db
        .insertInto('sp_credentials')
        .values({
          id: credential.id,
          tenant_id: credential.tenantId,
          service_principal_id: credential.servicePrincipalId,
          kind: credential.kind,
          secret_hash: credential.secretHash,
          public_jwk: credential.publicJwk,
          hint: credential.hint,
          expires_at: credential.expiresAt,
          created_at: credential.createdAt,
        })
        .execute()
    },
    async listCredentials(
      tenantId: string,
      servicePrincipalId: string,
    ): Promise<SpCredentialRecord[]> {
      const rows = await db
        .selectFrom('sp_credentials')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('service_principal_id', '=', servicePrincipalId)
        .orderBy('created_at')
        .execute()
      return rows.map(toCredential)
    },
    async deleteCredential(
      tenantId: string,
      servicePrincipalId: string,
      id: string,
    ): Promise<boolean> {
      const result = await db
        .deleteFrom('sp_credentials')
        .where('tenant_id', '=', tenantId)
        .where('service_principal_id', '=', servicePrincipalId)
        .where('id', '=', id)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

export type PrincipalStore = ReturnType<typeof createPrincipalStore>
