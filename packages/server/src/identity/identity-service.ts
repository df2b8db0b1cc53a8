/**
 * Tenants, environments, users, service principals and role assignments: the rules around
 * the stores. Every read and write is scoped to the caller's tenant, so another tenant's
 * resource is reported exactly as a resource that never existed (`ResourceNotFound`).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'

import type { EnvironmentRole, PrincipalType } from '@desklink/protocol'
import type { Insertable } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { SigningKeyTable } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import type { IdentityStores } from './identity-stores.ts'
import { generatePassword, hashPassword } from './password-hash.ts'
import { assertPlatformAdmin, assertTenantAdmin, type Principal } from './principal.ts'
import type {
  PrincipalStatus,
  PrincipalStore,
  ServicePrincipalRecord,
  SpCredentialRecord,
  UserRecord,
} from './principal-store.ts'
import { parsePublicKey } from './public-key.ts'
import type { RoleAssignmentRecord } from './role-assignment-store.ts'
import type { EnvironmentRecord, TenantRecord } from './tenant-store.ts'

export interface IdentityServiceDeps {
  readonly stores: IdentityStores
  readonly transaction: <T>(work: (stores: IdentityStores) => Promise<T>) => Promise<T>
  /** Generates a tenant's signing key pair and returns the row to store (private half sealed). */
  readonly prepareSigningKey: (tenantId: string) => Promise<Insertable<SigningKeyTable>>
  readonly isUniqueViolation: (error: unknown) => boolean
  readonly clock: Clock
  readonly newId: IdGenerator
}

/** Client secrets: `dls_` + 32 random bytes. High entropy, so SHA-256 is a sufficient hash. */
export const CLIENT_SECRET_PREFIX = 'dls_'

export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url')
}

const notFound = () => new AppError('ResourceNotFound')

export function createIdentityService(deps: IdentityServiceDeps) {
  const { stores, clock, newId } = deps
  const { tenants, principals, roles } = stores
  const now = () => clock.now().toISOString()

  async function uniquely<T>(
    work: () => Promise<T>,
    code: 'NameAlreadyInUse' | 'RoleAssignmentExists',
  ): Promise<T> {
    try {
      return await work()
    } catch (error) {
      if (deps.isUniqueViolation(error)) throw new AppError(code)
      throw error
    }
  }

  async function environmentOf(
    principal: Principal,
    environmentId: string,
  ): Promise<EnvironmentRecord> {
    const environment = await tenants.findEnvironment(principal.tenant.id, environmentId)
    if (!environment) throw notFound()
    return environment
  }

  async function rolesIn(principal: Principal, environmentId: string): Promise<EnvironmentRole[]> {
    const assignments = await roles.listForPrincipal(
      principal.tenant.id,
      principal.type,
      principal.id,
    )
    return assignments.filter((a) => a.environmentId === environmentId).map((a) => a.role)
  }

  async function assertEnvironmentAdmin(
    principal: Principal,
    environmentId: string,
  ): Promise<void> {
    if (principal.isTenantAdmin) return
    if (!(await rolesIn(principal, environmentId)).includes('EnvironmentAdmin')) {
      throw new AppError('Forbidden', { details: { requiredRole: 'EnvironmentAdmin' } })
    }
  }

  async function createUserRecord(
    store: PrincipalStore,
    input: {
      tenantId: string
      username: string
      displayName?: string | undefined
      password?: string | undefined
      isTenantAdmin: boolean
      isPlatformAdmin: boolean
    },
  ): Promise<{ user: UserRecord; generatedPassword?: string }> {
    const generatedPassword = input.password === undefined ? generatePassword() : undefined
    const at = now()
    const user: UserRecord = {
      id: newId(),
      tenantId: input.tenantId,
      username: input.username,
      displayName: input.displayName ?? input.username,
      passwordHash: await hashPassword(input.password ?? generatedPassword ?? ''),
      status: 'active',
      isTenantAdmin: input.isTenantAdmin,
      isPlatformAdmin: input.isPlatformAdmin,
      createdAt: at,
      updatedAt: at,
    }
    await uniquely(() => store.insertUser(user), 'NameAlreadyInUse')
    return generatedPassword === undefined ? { user } : { user, generatedPassword }
  }

  async function newSecret(
    store: PrincipalStore,
    tenantId: string,
    servicePrincipalId: string,
    expiresInDays: number,
  ): Promise<{ record: SpCredentialRecord; clientSecret: string }> {
    const id = newId()
    const clientSecret = `${CLIENT_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`
    const record: SpCredentialRecord = {
      id,
      tenantId,
      servicePrincipalId,
      kind: 'secret',
      secretHash: hashClientSecret(clientSecret),
      publicJwk: null,
      hint: `${clientSecret.slice(0, 7)}…`,
      expiresAt: new Date(clock.now().getTime() + expiresInDays * 86_400_000).toISOString(),
      createdAt: now(),
    }
    await store.insertCredential(record)
    return { record, clientSecret }
  }

  async function servicePrincipalOf(
    principal: Principal,
    id: string,
  ): Promise<ServicePrincipalRecord> {
    const sp = await principals.findServicePrincipal(principal.tenant.id, id)
    if (!sp) throw notFound()
    return sp
  }

  async function assertPrincipalExists(
    tenantId: string,
    type: PrincipalType,
    id: string,
  ): Promise<void> {
    if (!(await principals.principalExists(tenantId, type, id))) {
      throw new AppError('InvalidRequestBody', {
        message: 'The principal does not exist in this tenant.',
        details: { field: 'principalId' },
      })
    }
  }

  return {
    /**
     * Creates a tenant with its signing key, a `default` environment and its first
     * administrator. The bootstrap passes `isPlatformAdmin` for the very first tenant.
     */
    async createTenant(input: {
      slug: string
      displayName: string
      adminUsername: string
      adminPassword?: string | undefined
      isPlatformAdmin?: boolean
    }): Promise<{
      tenant: TenantRecord
      environment: EnvironmentRecord
      admin: UserRecord
      generatedPassword?: string
    }> {
      const tenantId = newId()
      const signingKey = await deps.prepareSigningKey(tenantId)
      return deps.transaction(async (tx) => {
        const tenant: TenantRecord = {
          id: tenantId,
          slug: input.slug,
          displayName: input.displayName,
          status: 'active',
          createdAt: now(),
        }
        await uniquely(() => tx.tenants.insertTenant(tenant), 'NameAlreadyInUse')
        await tx.insertSigningKey(signingKey)
        const environment: EnvironmentRecord = {
          id: newId(),
          tenantId: tenant.id,
          name: 'default',
          description: 'Created with the tenant.',
          createdAt: now(),
        }
        await tx.tenants.insertEnvironment(environment)
        const { user: admin, generatedPassword } = await createUserRecord(tx.principals, {
          tenantId: tenant.id,
          username: input.adminUsername,
          password: input.adminPassword,
          isTenantAdmin: true,
          isPlatformAdmin: input.isPlatformAdmin ?? false,
        })
        await tx.roles.insert({
          id: newId(),
          tenantId: tenant.id,
          environmentId: environment.id,
          principalType: 'user',
          principalId: admin.id,
          role: 'EnvironmentAdmin',
          createdAt: now(),
        })
        return generatedPassword === undefined
          ? { tenant, environment, admin }
          : { tenant, environment, admin, generatedPassword }
      })
    },

    async listTenants(principal: Principal): Promise<TenantRecord[]> {
      return principal.isPlatformAdmin ? tenants.listTenants() : [principal.tenant]
    },

    async getTenant(principal: Principal, id: string): Promise<TenantRecord> {
      if (id !== principal.tenant.id && !principal.isPlatformAdmin) throw notFound()
      const tenant = await tenants.findTenantById(id)
      if (!tenant) throw notFound()
      return tenant
    },

    async updateTenant(
      principal: Principal,
      id: string,
      changes: { displayName?: string | undefined; status?: PrincipalStatus | undefined },
    ): Promise<TenantRecord> {
      const tenant = await this.getTenant(principal, id)
      if (changes.status !== undefined) {
        assertPlatformAdmin(principal)
        if (tenant.id === principal.tenant.id && changes.status === 'deactivated') {
          throw new AppError('LastAdministrator', {
            message: 'The platform administrator cannot deactivate its own tenant.',
          })
        }
      } else {
        assertTenantAdmin(principal)
      }
      await tenants.updateTenant(id, changes)
      return this.getTenant(principal, id)
    },

    async listEnvironments(principal: Principal): Promise<EnvironmentRecord[]> {
      const all = await tenants.listEnvironments(principal.tenant.id)
      if (principal.isTenantAdmin) return all
      const mine = new Set(
        (await roles.listForPrincipal(principal.tenant.id, principal.type, principal.id)).map(
          (a) => a.environmentId,
        ),
      )
      return all.filter((e) => mine.has(e.id))
    },

    async getEnvironment(principal: Principal, id: string): Promise<EnvironmentRecord> {
      const environment = await environmentOf(principal, id)
      if (!principal.isTenantAdmin && (await rolesIn(principal, id)).length === 0) throw notFound()
      return environment
    },

    async createEnvironment(
      principal: Principal,
      input: { name: string; description: string },
    ): Promise<EnvironmentRecord> {
      assertTenantAdmin(principal)
      const environment: EnvironmentRecord = {
        id: newId(),
        tenantId: principal.tenant.id,
        name: input.name,
        description: input.description,
        createdAt: now(),
      }
      await uniquely(() => tenants.insertEnvironment(environment), 'NameAlreadyInUse')
      return environment
    },

    async updateEnvironment(
      principal: Principal,
      id: string,
      changes: { name?: string | undefined; description?: string | undefined },
    ): Promise<EnvironmentRecord> {
      await environmentOf(principal, id)
      await assertEnvironmentAdmin(principal, id)
      await uniquely(
        () => tenants.updateEnvironment(principal.tenant.id, id, changes),
        'NameAlreadyInUse',
      )
      return environmentOf(principal, id)
    },

    async deleteEnvironment(principal: Principal, id: string): Promise<void> {
      await environmentOf(principal, id)
      assertTenantAdmin(principal)
      await tenants.deleteEnvironment(principal.tenant.id, id)
    },

    listUsers: (principal: Principal) => principals.listUsers(principal.tenant.id),

    async getUser(principal: Principal, id: string): Promise<UserRecord> {
      const user = await principals.findUser(principal.tenant.id, id)
      if (!user) throw notFound()
      return user
    },

    async createUser(
      principal: Principal,
      input: {
        username: string
        displayName?: string | undefined
        password?: string | undefined
        isTenantAdmin: boolean
      },
    ): Promise<{ user: UserRecord; generatedPassword?: string }> {
      assertTenantAdmin(principal)
      return createUserRecord(principals, {
        ...input,
        tenantId: principal.tenant.id,
        isPlatformAdmin: false,
      })
    },

    async updateUser(
      principal: Principal,
      id: string,
      changes: {
        displayName?: string | undefined
        status?: PrincipalStatus | undefined
        isTenantAdmin?: boolean | undefined
        password?: string | undefined
      },
    ): Promise<UserRecord> {
      const user = await this.getUser(principal, id)
      const selfServiceOnly =
        user.id === principal.id &&
        changes.status === undefined &&
        changes.isTenantAdmin === undefined
      if (!selfServiceOnly) assertTenantAdmin(principal)
      const losesAdmin =
        user.isTenantAdmin &&
        user.status === 'active' &&
        (changes.status === 'deactivated' || changes.isTenantAdmin === false)
      if (losesAdmin && (await principals.countActiveTenantAdmins(principal.tenant.id)) <= 1) {
        throw new AppError('LastAdministrator')
      }
      await principals.updateUser(
        principal.tenant.id,
        id,
        {
          displayName: changes.displayName,
          status: changes.status,
          isTenantAdmin: changes.isTenantAdmin,
          passwordHash:
            changes.password === undefined ? undefined : await hashPassword(changes.password),
        },
        now(),
      )
      return this.getUser(principal, id)
    },

    listServicePrincipals: (principal: Principal) =>
      principals.listServicePrincipals(principal.tenant.id),

    getServicePrincipal: servicePrincipalOf,

    async createServicePrincipal(
      principal: Principal,
      input: { name: string; description: string; withSecret: boolean },
    ): Promise<{
      servicePrincipal: ServicePrincipalRecord
      secret?: { record: SpCredentialRecord; clientSecret: string }
    }> {
      assertTenantAdmin(principal)
      return deps.transaction(async (tx) => {
        const at = now()
        const servicePrincipal: ServicePrincipalRecord = {
          id: newId(),
          tenantId: principal.tenant.id,
          name: input.name,
          description: input.description,
          status: 'active',
          createdAt: at,
          updatedAt: at,
        }
        await uniquely(
          () => tx.principals.insertServicePrincipal(servicePrincipal),
          'NameAlreadyInUse',
        )
        if (!input.withSecret) return { servicePrincipal }
        const secret = await newSecret(tx.principals, principal.tenant.id, servicePrincipal.id, 365)
        return { servicePrincipal, secret }
      })
    },

    async updateServicePrincipal(
      principal: Principal,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        status?: PrincipalStatus | undefined
      },
    ): Promise<ServicePrincipalRecord> {
      await servicePrincipalOf(principal, id)
      assertTenantAdmin(principal)
      await uniquely(
        () => principals.updateServicePrincipal(principal.tenant.id, id, changes, now()),
        'NameAlreadyInUse',
      )
      return servicePrincipalOf(principal, id)
    },

    async deleteServicePrincipal(principal: Principal, id: string): Promise<void> {
      await servicePrincipalOf(principal, id)
      assertTenantAdmin(principal)
      await principals.deleteServicePrincipal(principal.tenant.id, id)
    },

    async listCredentials(principal: Principal, id: string): Promise<SpCredentialRecord[]> {
      await servicePrincipalOf(principal, id)
      return principals.listCredentials(principal.tenant.id, id)
    },

    async addSecret(
      principal: Principal,
      id: string,
      expiresInDays: number,
    ): Promise<{ record: SpCredentialRecord; clientSecret: string }> {
      await servicePrincipalOf(principal, id)
      assertTenantAdmin(principal)
      return newSecret(principals, principal.tenant.id, id, expiresInDays)
    },

    async addCertificate(
      principal: Principal,
      id: string,
      publicKey: string | Record<string, unknown>,
    ): Promise<SpCredentialRecord> {
      await servicePrincipalOf(principal, id)
      assertTenantAdmin(principal)
      const parsed = await parsePublicKey(publicKey)
      const record: SpCredentialRecord = {
        id: newId(),
        tenantId: principal.tenant.id,
        servicePrincipalId: id,
        kind: 'certificate',
        secretHash: null,
        publicJwk: JSON.stringify(parsed.jwk),
        hint: parsed.thumbprint,
        expiresAt: null,
        createdAt: now(),
      }
      await principals.insertCredential(record)
      return record
    },

    async removeCredential(principal: Principal, id: string, credentialId: string): Promise<void> {
      await servicePrincipalOf(principal, id)
      assertTenantAdmin(principal)
      if (!(await principals.deleteCredential(principal.tenant.id, id, credentialId)))
        throw notFound()
    },

    async listRoleAssignments(
      principal: Principal,
      environmentId: string,
    ): Promise<RoleAssignmentRecord[]> {
      await this.getEnvironment(principal, environmentId)
      return roles.listForEnvironment(principal.tenant.id, environmentId)
    },

    async createRoleAssignment(
      principal: Principal,
      environmentId: string,
      input: { principalType: PrincipalType; principalId: string; role: EnvironmentRole },
    ): Promise<RoleAssignmentRecord> {
      await environmentOf(principal, environmentId)
      await assertEnvironmentAdmin(principal, environmentId)
      await assertPrincipalExists(principal.tenant.id, input.principalType, input.principalId)
      const assignment: RoleAssignmentRecord = {
        id: newId(),
        tenantId: principal.tenant.id,
        environmentId,
        ...input,
        createdAt: now(),
      }
      await uniquely(() => roles.insert(assignment), 'RoleAssignmentExists')
      return assignment
    },

    async deleteRoleAssignment(
      principal: Principal,
      environmentId: string,
      id: string,
    ): Promise<void> {
      await environmentOf(principal, environmentId)
      await assertEnvironmentAdmin(principal, environmentId)
      if (!(await roles.find(principal.tenant.id, environmentId, id))) throw notFound()
      await roles.delete(principal.tenant.id, environmentId, id)
    },

    async describeRoles(principal: Principal) {
      const assignments = await roles.listForPrincipal(
        principal.tenant.id,
        principal.type,
        principal.id,
      )
      const environments = new Map(
        (await tenants.listEnvironments(principal.tenant.id)).map((e) => [e.id, e.name]),
      )
      return assignments.map((a) => ({
        environmentId: a.environmentId,
        environmentName: environments.get(a.environmentId) ?? '',
        role: a.role,
      }))
    },
  }
}

export type IdentityService = ReturnType<typeof createIdentityService>
