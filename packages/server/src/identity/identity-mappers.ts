/**
 * Records to API shapes. Hashes, sealed keys and other private fields never leave here.
 *
 * @module
 */
import type {
  Environment,
  RoleAssignment,
  ServicePrincipal,
  ServicePrincipalCredential,
  Tenant,
  User,
} from '@desklink/protocol'

import type { ServicePrincipalRecord, SpCredentialRecord, UserRecord } from './principal-store.ts'
import type { RoleAssignmentRecord } from './role-assignment-store.ts'
import type { EnvironmentRecord, TenantRecord } from './tenant-store.ts'

export const toApiTenant = (tenant: TenantRecord, issuer: string): Tenant => ({
  id: tenant.id,
  slug: tenant.slug,
  displayName: tenant.displayName,
  status: tenant.status,
  issuer,
  createdAt: tenant.createdAt,
})

export const toApiEnvironment = (environment: EnvironmentRecord): Environment => ({
  ...environment,
})

export const toApiUser = (user: UserRecord): User => ({
  id: user.id,
  tenantId: user.tenantId,
  username: user.username,
  displayName: user.displayName,
  status: user.status,
  isTenantAdmin: user.isTenantAdmin,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
})

export const toApiServicePrincipal = (sp: ServicePrincipalRecord): ServicePrincipal => ({
  ...sp,
  clientId: sp.id,
})

export const toApiCredential = (credential: SpCredentialRecord): ServicePrincipalCredential => ({
  id: credential.id,
  kind: credential.kind,
  hint: credential.hint,
  expiresAt: credential.expiresAt,
  createdAt: credential.createdAt,
})

export const toApiRoleAssignment = (assignment: RoleAssignmentRecord): RoleAssignment => ({
  id: assignment.id,
  environmentId: assignment.environmentId,
  principalType: assignment.principalType,
  principalId: assignment.principalId,
  role: assignment.role,
  createdAt: assignment.createdAt,
})
