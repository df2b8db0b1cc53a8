/**
 * Environment role assignments of users and service principals.
 *
 * @module
 */
import type { EnvironmentRole, PrincipalType } from '@desklink/protocol'
import type { Kysely, Selectable } from 'kysely'

import { type Database, prepareQuery, type RoleAssignmentTable } from '../storage/index.ts'

export interface RoleAssignmentRecord {
  readonly id: string
  readonly tenantId: string
  readonly environmentId: string
  readonly principalType: PrincipalType
  readonly principalId: string
  readonly role: EnvironmentRole
  readonly createdAt: string
}

const toAssignment = (row: Selectable<RoleAssignmentTable>): RoleAssignmentRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  environmentId: row.environment_id,
  principalType: row.principal_type,
  principalId: row.principal_id,
  role: row.role as EnvironmentRole,
  createdAt: row.created_at,
})

export function createRoleAssignmentStore(db: Kysely<Database>) {
  // The access rules read a caller's roles on most requests.
  const forPrincipal = prepareQuery(
    db,
    (q, a: { tenantId: string; principalType: PrincipalType; principalId: string }) =>
      q
        .selectFrom('role_assignments')
        .selectAll()
        .where('tenant_id', '=', a.tenantId)
        .where('principal_type', '=', a.principalType)
        .where('principal_id', '=', a.principalId)
        .orderBy('created_at'),
    { cached: true },
  )
  return {
    async insert(assignment: RoleAssignmentRecord): Promise<void> {
      await db
        .insertInto('role_assignments')
        .values({
          id: assignment.id,
          tenant_id: assignment.tenantId,
          environment_id: assignment.environmentId,
          principal_type: assignment.principalType,
          principal_id: assignment.principalId,
          role: assignment.role,
          created_at: assignment.createdAt,
        })
        .execute()
    },
    async find(
      tenantId: string,
      environmentId: string,
      id: string,
    ): Promise<RoleAssignmentRecord | undefined> {
      const row = await db
        .selectFrom('role_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('environment_id', '=', environmentId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toAssignment(row)
    },
    async listForEnvironment(
      tenantId: string,
      environmentId: string,
    ): Promise<RoleAssignmentRecord[]> {
      const rows = await db
        .selectFrom('role_assignments')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('environment_id', '=', environmentId)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toAssignment)
    },
    async listForPrincipal(
      tenantId: string,
      principalType: PrincipalType,
      principalId: string,
    ): Promise<RoleAssignmentRecord[]> {
      const rows = await forPrincipal.all({ tenantId, principalType, principalId })
      return rows.map(toAssignment)
    },
    async delete(tenantId: string, environmentId: string, id: string): Promise<boolean> {
      const result = await db
        .deleteFrom('role_assignments')
        .where('tenant_id', '=', tenantId)
        .where('environment_id', '=', environmentId)
        .where('id', '=', id)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

export type RoleAssignmentStore = ReturnType<typeof createRoleAssignmentStore>
