/**
 * Per-resource access granted to users and service principals (machines and machine groups
 * now; credentials and flows later): `coOwner` or `user`.
 *
 * @module
 */
import type { Kysely, Selectable } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { Database, ResourceShareTable } from '../storage/index.ts'

export type ShareRecord = Selectable<ResourceShareTable>
export type SharedResourceType = ResourceShareTable['resource_type']

export function createShareStore(
  db: Kysely<Database>,
  isUniqueViolation: (error: unknown) => boolean,
) {
  return {
    /** Adds a share; a second share of the same resource with the same principal is refused. */
    async insert(share: ShareRecord): Promise<void> {
      try {
        await db.insertInto('resource_shares').values(share).execute()
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new AppError('NameAlreadyInUse', {
            message: 'The resource is already shared with this principal.',
          })
        }
        throw error
      }
    },
    list(
      tenantId: string,
      resourceType: SharedResourceType,
      resourceId: string,
    ): Promise<ShareRecord[]> {
      return db
        .selectFrom('resource_shares')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', resourceType)
        .where('resource_id', '=', resourceId)
        .orderBy('created_at')
        .execute()
    },
    async accessOf(
      tenantId: string,
      resourceType: SharedResourceType,
      resourceId: string,
      principalType: ShareRecord['principal_type'],
      principalId: string,
    ): Promise<ShareRecord['access'] | undefined> {
      const row = await db
        .selectFrom('resource_shares')
        .select('access')
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', resourceType)
        .where('resource_id', '=', resourceId)
        .where('principal_type', '=', principalType)
        .where('principal_id', '=', principalId)
        .executeTakeFirst()
      return row?.access
    },
    /** Ids of resources of one type shared with the principal. */
    async resourcesSharedWith(
      tenantId: string,
      resourceType: SharedResourceType,
      principalType: ShareRecord['principal_type'],
      principalId: string,
    ): Promise<Map<string, ShareRecord['access']>> {
      const rows = await db
        .selectFrom('resource_shares')
        .select(['resource_id', 'access'])
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', resourceType)
        .where('principal_type', '=', principalType)
        .where('principal_id', '=', principalId)
        .execute()
      return new Map(rows.map((r) => [r.resource_id, r.access]))
    },
    async delete(
      tenantId: string,
      resourceType: SharedResourceType,
      resourceId: string,
      id: string,
    ): Promise<boolean> {
      const result = await db
        .deleteFrom('resource_shares')
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', resourceType)
        .where('resource_id', '=', resourceId)
        .where('id', '=', id)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
    async deleteAllFor(
      tenantId: string,
      resourceType: SharedResourceType,
      resourceId: string,
    ): Promise<void> {
      await db
        .deleteFrom('resource_shares')
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', resourceType)
        .where('resource_id', '=', resourceId)
        .execute()
    },
  }
}

export type ShareStore = ReturnType<typeof createShareStore>
