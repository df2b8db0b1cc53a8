/**
 * Who may do what with a machine or machine group (reference §2.3): environment
 * administrators everything; otherwise the principal needs a role in the environment AND
 * per-resource access: the owner or a co-owner may edit, delete, share and manage members; a
 * user may only see and run. Machines in a machine group also take the group's access ("access
 * is managed at group level"). A principal with no access does not see the resource at all.
 *
 * @module
 */
import type { EnvironmentRole } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { RoleAssignmentStore } from '../identity/role-assignment-store.ts'
import type { SharedResourceType, ShareStore } from '../sharing/share-store.ts'

export type Access = 'admin' | 'owner' | 'coOwner' | 'userCanShare' | 'user'

const RANK: Record<Access, number> = { user: 1, userCanShare: 1.5, coOwner: 2, owner: 3, admin: 4 }

export const best = (...levels: (Access | undefined)[]): Access | undefined =>
  levels.reduce<Access | undefined>((a, b) => (b && (!a || RANK[b] > RANK[a]) ? b : a), undefined)

/** Roles that may register machines and create machine groups. */
export const MACHINE_CREATOR_ROLES: readonly EnvironmentRole[] = [
  'EnvironmentAdmin',
  'EnvironmentMaker',
  'MachineOwner',
]

interface OwnedResource {
  readonly id: string
  readonly environmentId: string
  readonly ownerType: 'user' | 'servicePrincipal'
  readonly ownerId: string
}

export function createMachineAccess(deps: {
  roles: RoleAssignmentStore
  shares: ShareStore
  environmentExists: (tenantId: string, environmentId: string) => Promise<boolean>
}) {
  async function rolesIn(principal: Principal, environmentId: string): Promise<EnvironmentRole[]> {
    const assignments = await deps.roles.listForPrincipal(
      principal.tenant.id,
      principal.type,
      principal.id,
    )
    return assignments.filter((a) => a.environmentId === environmentId).map((a) => a.role)
  }

  async function accessTo(
    principal: Principal,
    type: SharedResourceType,
    resource: OwnedResource,
  ): Promise<Access | undefined> {
    if (principal.isTenantAdmin) return 'admin'
    const roles = await rolesIn(principal, resource.environmentId)
    if (roles.includes('EnvironmentAdmin')) return 'admin'
    if (roles.length === 0) return undefined
    if (resource.ownerType === principal.type && resource.ownerId === principal.id) return 'owner'
    const shared = await deps.shares.accessOf(
      principal.tenant.id,
      type,
      resource.id,
      principal.type,
      principal.id,
    )
    return shared === 'coOwner' || shared === 'user' || shared === 'userCanShare'
      ? shared
      : undefined
  }

  return {
    rolesIn,
    accessTo,
    /** The environment exists in the caller's tenant and the caller has a role there (or is a tenant admin). */
    async assertEnvironmentVisible(principal: Principal, environmentId: string): Promise<void> {
      const found = await deps.environmentExists(principal.tenant.id, environmentId)
      if (
        !found ||
        (!principal.isTenantAdmin && (await rolesIn(principal, environmentId)).length === 0)
      ) {
        throw new AppError('ResourceNotFound')
      }
    },
    /** Throws Forbidden unless the principal may create machines or groups in the environment. */
    async assertMayCreate(principal: Principal, environmentId: string): Promise<void> {
      if (principal.isTenantAdmin) return
      const roles = await rolesIn(principal, environmentId)
      if (!roles.some((r) => MACHINE_CREATOR_ROLES.includes(r))) {
        throw new AppError('Forbidden', { details: { requiredRole: MACHINE_CREATOR_ROLES } })
      }
    },
  }
}

export type MachineAccess = ReturnType<typeof createMachineAccess>

/** Sharing needs co-owner access, or (credentials) the user-can-share level. */
export function assertShare(access: Access): void {
  if (RANK[access] < RANK.userCanShare) {
    throw new AppError('Forbidden', { details: { requiredAccess: 'coOwner' } })
  }
}

/** Editing, deleting, sharing and managing members need owner-level access. */
export function assertManage(access: Access): void {
  if (RANK[access] < RANK.coOwner) {
    throw new AppError('Forbidden', { details: { requiredAccess: 'coOwner' } })
  }
}
