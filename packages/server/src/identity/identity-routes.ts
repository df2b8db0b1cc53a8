/**
 * The identity API: the caller, tenants, environments, users, service principals, their
 * credentials, and environment role assignments. Routes only translate; the service decides.
 *
 * @module
 */
import {
  AddCertificateRequest,
  CreatedSecret,
  CreatedServicePrincipal,
  CreatedUser,
  CreateEnvironmentRequest,
  CreateRoleAssignmentRequest,
  CreateSecretRequest,
  CreateServicePrincipalRequest,
  CreateTenantRequest,
  CreateUserRequest,
  Environment,
  Id,
  ListOf,
  Me,
  RoleAssignment,
  ServicePrincipal,
  ServicePrincipalCredential,
  Tenant,
  UpdateEnvironmentRequest,
  UpdateServicePrincipalRequest,
  UpdateTenantRequest,
  UpdateUserRequest,
  User,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import {
  toApiCredential,
  toApiEnvironment,
  toApiRoleAssignment,
  toApiServicePrincipal,
  toApiTenant,
  toApiUser,
} from './identity-mappers.ts'
import type { IdentityService } from './identity-service.ts'
import { assertPlatformAdmin } from './principal.ts'

const TenantParams = z.object({ tenantId: Id })
const EnvironmentParams = z.object({ environmentId: Id })
const UserParams = z.object({ userId: Id })
const SpParams = z.object({ servicePrincipalId: Id })
const SpCredentialParams = z.object({ servicePrincipalId: Id, credentialId: Id })
const AssignmentParams = z.object({ environmentId: Id, assignmentId: Id })

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })

export const identityRouteDefinitions = {
  me: route({
    method: 'get',
    path: '/me',
    tags: ['Identity'],
    summary: 'Who am I',
    responses: responses(200, Me),
  }),
  listTenants: route({
    method: 'get',
    path: '/tenants',
    tags: ['Tenants'],
    summary: 'List tenants (all for the platform administrator, else the own one)',
    responses: responses(200, ListOf(Tenant)),
  }),
  createTenant: route({
    method: 'post',
    path: '/tenants',
    tags: ['Tenants'],
    summary: 'Create a tenant with its first administrator (platform administrator)',
    request: { body: jsonBody(CreateTenantRequest) },
    responses: responses(
      201,
      z.object({ tenant: Tenant, environment: Environment, admin: CreatedUser }),
    ),
  }),
  getTenant: route({
    method: 'get',
    path: '/tenants/{tenantId}',
    tags: ['Tenants'],
    summary: 'Get a tenant',
    request: { params: TenantParams },
    responses: responses(200, Tenant),
  }),
  updateTenant: route({
    method: 'patch',
    path: '/tenants/{tenantId}',
    tags: ['Tenants'],
    summary: 'Rename, deactivate or reactivate a tenant',
    request: { params: TenantParams, body: jsonBody(UpdateTenantRequest) },
    responses: responses(200, Tenant),
  }),
  listEnvironments: route({
    method: 'get',
    path: '/environments',
    tags: ['Environments'],
    summary: 'List the environments the caller has a role in (all for tenant administrators)',
    responses: responses(200, ListOf(Environment)),
  }),
  createEnvironment: route({
    method: 'post',
    path: '/environments',
    tags: ['Environments'],
    summary: 'Create an environment (tenant administrator)',
    request: { body: jsonBody(CreateEnvironmentRequest) },
    responses: responses(201, Environment),
  }),
  getEnvironment: route({
    method: 'get',
    path: '/environments/{environmentId}',
    tags: ['Environments'],
    summary: 'Get an environment',
    request: { params: EnvironmentParams },
    responses: responses(200, Environment),
  }),
  updateEnvironment: route({
    method: 'patch',
    path: '/environments/{environmentId}',
    tags: ['Environments'],
    summary: 'Rename or describe an environment (EnvironmentAdmin)',
    request: { params: EnvironmentParams, body: jsonBody(UpdateEnvironmentRequest) },
    responses: responses(200, Environment),
  }),
  deleteEnvironment: route({
    method: 'delete',
    path: '/environments/{environmentId}',
    tags: ['Environments'],
    summary: 'Delete an environment and everything in it (tenant administrator)',
    request: { params: EnvironmentParams },
    responses: noContent,
  }),
  listRoleAssignments: route({
    method: 'get',
    path: '/environments/{environmentId}/role-assignments',
    tags: ['Environments'],
    summary: 'List role assignments of an environment',
    request: { params: EnvironmentParams },
    responses: responses(200, ListOf(RoleAssignment)),
  }),
  createRoleAssignment: route({
    method: 'post',
    path: '/environments/{environmentId}/role-assignments',
    tags: ['Environments'],
    summary: 'Give a user or service principal a role in an environment (EnvironmentAdmin)',
    request: { params: EnvironmentParams, body: jsonBody(CreateRoleAssignmentRequest) },
    responses: responses(201, RoleAssignment),
  }),
  deleteRoleAssignment: route({
    method: 'delete',
    path: '/environments/{environmentId}/role-assignments/{assignmentId}',
    tags: ['Environments'],
    summary: 'Remove a role assignment (EnvironmentAdmin)',
    request: { params: AssignmentParams },
    responses: noContent,
  }),
  listUsers: route({
    method: 'get',
    path: '/users',
    tags: ['Users'],
    summary: 'List the users of the tenant',
    responses: responses(200, ListOf(User)),
  }),
  createUser: route({
    method: 'post',
    path: '/users',
    tags: ['Users'],
    summary: 'Create a user (tenant administrator); a generated password is returned once',
    request: { body: jsonBody(CreateUserRequest) },
    responses: responses(201, CreatedUser),
  }),
  getUser: route({
    method: 'get',
    path: '/users/{userId}',
    tags: ['Users'],
    summary: 'Get a user',
    request: { params: UserParams },
    responses: responses(200, User),
  }),
  updateUser: route({
    method: 'patch',
    path: '/users/{userId}',
    tags: ['Users'],
    summary: 'Update, deactivate or reset the password of a user',
    request: { params: UserParams, body: jsonBody(UpdateUserRequest) },
    responses: responses(200, User),
  }),
  listServicePrincipals: route({
    method: 'get',
    path: '/service-principals',
    tags: ['Service principals'],
    summary: 'List the service principals of the tenant',
    responses: responses(200, ListOf(ServicePrincipal)),
  }),
  createServicePrincipal: route({
    method: 'post',
    path: '/service-principals',
    tags: ['Service principals'],
    summary: 'Create a service principal; its first client secret is returned once',
    request: { body: jsonBody(CreateServicePrincipalRequest) },
    responses: responses(201, CreatedServicePrincipal),
  }),
  getServicePrincipal: route({
    method: 'get',
    path: '/service-principals/{servicePrincipalId}',
    tags: ['Service principals'],
    summary: 'Get a service principal',
    request: { params: SpParams },
    responses: responses(200, ServicePrincipal),
  }),
  updateServicePrincipal: route({
    method: 'patch',
    path: '/service-principals/{servicePrincipalId}',
    tags: ['Service principals'],
    summary: 'Update or deactivate a service principal',
    request: { params: SpParams, body: jsonBody(UpdateServicePrincipalRequest) },
    responses: responses(200, ServicePrincipal),
  }),
  deleteServicePrincipal: route({
    method: 'delete',
    path: '/service-principals/{servicePrincipalId}',
    tags: ['Service principals'],
    summary: 'Delete a service principal, its credentials and role assignments',
    request: { params: SpParams },
    responses: noContent,
  }),
  listCredentials: route({
    method: 'get',
    path: '/service-principals/{servicePrincipalId}/credentials',
    tags: ['Service principals'],
    summary: 'List the secrets and certificates of a service principal (never their values)',
    request: { params: SpParams },
    responses: responses(200, ListOf(ServicePrincipalCredential)),
  }),
  addSecret: route({
    method: 'post',
    path: '/service-principals/{servicePrincipalId}/secrets',
    tags: ['Service principals'],
    summary: 'Add a client secret; the value is in this response only',
    request: { params: SpParams, body: jsonBody(CreateSecretRequest) },
    responses: responses(201, CreatedSecret),
  }),
  addCertificate: route({
    method: 'post',
    path: '/service-principals/{servicePrincipalId}/certificates',
    tags: ['Service principals'],
    summary: 'Add a certificate public key for private_key_jwt client authentication',
    request: { params: SpParams, body: jsonBody(AddCertificateRequest) },
    responses: responses(201, ServicePrincipalCredential),
  }),
  removeCredential: route({
    method: 'delete',
    path: '/service-principals/{servicePrincipalId}/credentials/{credentialId}',
    tags: ['Service principals'],
    summary: 'Remove a secret or certificate',
    request: { params: SpCredentialParams },
    responses: noContent,
  }),
} as const

/** Registers the identity routes on `app` (mounted under `/api/v1`). */
export function registerIdentityRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { identity: IdentityService; issuerOf: (tenant: { slug: string }) => string },
): void {
  const { identity, issuerOf } = deps
  const r = identityRouteDefinitions
  const tenantOut = (t: Parameters<typeof toApiTenant>[0]) => toApiTenant(t, issuerOf(t))

  app.openapi(r.me, async (c) => {
    const p = c.get('principal')
    return c.json(
      {
        principalType: p.type,
        id: p.id,
        name: p.name,
        tenant: tenantOut(p.tenant),
        isTenantAdmin: p.isTenantAdmin,
        isPlatformAdmin: p.isPlatformAdmin,
        scopes: [...p.scopes],
        roles: await identity.describeRoles(p),
      },
      200,
    )
  })

  app.openapi(r.listTenants, async (c) =>
    c.json({ items: (await identity.listTenants(c.get('principal'))).map(tenantOut) }, 200),
  )
  app.openapi(r.createTenant, async (c) => {
    assertPlatformAdmin(c.get('principal'))
    const input = c.req.valid('json')
    const created = await identity.createTenant(input)
    return c.json(
      {
        tenant: tenantOut(created.tenant),
        environment: toApiEnvironment(created.environment),
        admin: {
          ...toApiUser(created.admin),
          ...(created.generatedPassword !== undefined && { password: created.generatedPassword }),
        },
      },
      201,
    )
  })
  app.openapi(r.getTenant, async (c) =>
    c.json(
      tenantOut(await identity.getTenant(c.get('principal'), c.req.valid('param').tenantId)),
      200,
    ),
  )
  app.openapi(r.updateTenant, async (c) =>
    c.json(
      tenantOut(
        await identity.updateTenant(
          c.get('principal'),
          c.req.valid('param').tenantId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )

  app.openapi(r.listEnvironments, async (c) =>
    c.json(
      { items: (await identity.listEnvironments(c.get('principal'))).map(toApiEnvironment) },
      200,
    ),
  )
  app.openapi(r.createEnvironment, async (c) =>
    c.json(
      toApiEnvironment(await identity.createEnvironment(c.get('principal'), c.req.valid('json'))),
      201,
    ),
  )
  app.openapi(r.getEnvironment, async (c) =>
    c.json(
      toApiEnvironment(
        await identity.getEnvironment(c.get('principal'), c.req.valid('param').environmentId),
      ),
      200,
    ),
  )
  app.openapi(r.updateEnvironment, async (c) =>
    c.json(
      toApiEnvironment(
        await identity.updateEnvironment(
          c.get('principal'),
          c.req.valid('param').environmentId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.deleteEnvironment, async (c) => {
    await identity.deleteEnvironment(c.get('principal'), c.req.valid('param').environmentId)
    return c.body(null, 204)
  })
  app.openapi(r.listRoleAssignments, async (c) =>
    c.json(
      {
        items: (
          await identity.listRoleAssignments(c.get('principal'), c.req.valid('param').environmentId)
        ).map(toApiRoleAssignment),
      },
      200,
    ),
  )
  app.openapi(r.createRoleAssignment, async (c) =>
    c.json(
      toApiRoleAssignment(
        await identity.createRoleAssignment(
          c.get('principal'),
          c.req.valid('param').environmentId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.deleteRoleAssignment, async (c) => {
    const { environmentId, assignmentId } = c.req.valid('param')
    await identity.deleteRoleAssignment(c.get('principal'), environmentId, assignmentId)
    return c.body(null, 204)
  })

  app.openapi(r.listUsers, async (c) =>
    c.json({ items: (await identity.listUsers(c.get('principal'))).map(toApiUser) }, 200),
  )
  app.openapi(r.createUser, async (c) => {
    const { user, generatedPassword } = await identity.createUser(
      c.get('principal'),
      c.req.valid('json'),
    )
    return c.json(
      {
        ...toApiUser(user),
        ...(generatedPassword !== undefined && { password: generatedPassword }),
      },
      201,
    )
  })
  app.openapi(r.getUser, async (c) =>
    c.json(toApiUser(await identity.getUser(c.get('principal'), c.req.valid('param').userId)), 200),
  )
  app.openapi(r.updateUser, async (c) =>
    c.json(
      toApiUser(
        await identity.updateUser(
          c.get('principal'),
          c.req.valid('param').userId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )

  app.openapi(r.listServicePrincipals, async (c) =>
    c.json(
      {
        items: (await identity.listServicePrincipals(c.get('principal'))).map(
          toApiServicePrincipal,
        ),
      },
      200,
    ),
  )
  app.openapi(r.createServicePrincipal, async (c) => {
    const { servicePrincipal, secret } = await identity.createServicePrincipal(
      c.get('principal'),
      c.req.valid('json'),
    )
    return c.json(
      {
        ...toApiServicePrincipal(servicePrincipal),
        ...(secret && {
          secret: { ...toApiCredential(secret.record), clientSecret: secret.clientSecret },
        }),
      },
      201,
    )
  })
  app.openapi(r.getServicePrincipal, async (c) =>
    c.json(
      toApiServicePrincipal(
        await identity.getServicePrincipal(
          c.get('principal'),
          c.req.valid('param').servicePrincipalId,
        ),
      ),
      200,
    ),
  )
  app.openapi(r.updateServicePrincipal, async (c) =>
    c.json(
      toApiServicePrincipal(
        await identity.updateServicePrincipal(
          c.get('principal'),
          c.req.valid('param').servicePrincipalId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.deleteServicePrincipal, async (c) => {
    await identity.deleteServicePrincipal(
      c.get('principal'),
      c.req.valid('param').servicePrincipalId,
    )
    return c.body(null, 204)
  })
  app.openapi(r.listCredentials, async (c) =>
    c.json(
      {
        items: (
          await identity.listCredentials(
            c.get('principal'),
            c.req.valid('param').servicePrincipalId,
          )
        ).map(toApiCredential),
      },
      200,
    ),
  )
  app.openapi(r.addSecret, async (c) => {
    const { record, clientSecret } = await identity.addSecret(
      c.get('principal'),
      c.req.valid('param').servicePrincipalId,
      c.req.valid('json').expiresInDays,
    )
    return c.json({ ...toApiCredential(record), clientSecret }, 201)
  })
  app.openapi(r.addCertificate, async (c) =>
    c.json(
      toApiCredential(
        await identity.addCertificate(
          c.get('principal'),
          c.req.valid('param').servicePrincipalId,
          c.req.valid('json').publicKey,
        ),
      ),
      201,
    ),
  )
  app.openapi(r.removeCredential, async (c) => {
    const { servicePrincipalId, credentialId } = c.req.valid('param')
    await identity.removeCredential(c.get('principal'), servicePrincipalId, credentialId)
    return c.body(null, 204)
  })
}
