/**
 * Request and response shapes of the identity API, shared by the server (validation and
 * OpenAPI), the CLI and the portal. Request bodies are strict: unknown fields are rejected.
 *
 * @module
 */
import { z } from 'zod'

export const Id = z.uuid()

export const ENVIRONMENT_ROLES = [
  'EnvironmentAdmin',
  'EnvironmentMaker',
  'MachineOwner',
  'MachineUser',
] as const
export const EnvironmentRole = z.enum(ENVIRONMENT_ROLES)
export type EnvironmentRole = z.infer<typeof EnvironmentRole>

export const PrincipalType = z.enum(['user', 'servicePrincipal'])
export type PrincipalType = z.infer<typeof PrincipalType>

export const PrincipalStatus = z.enum(['active', 'deactivated'])

/** Tenant slugs appear in issuer URLs, so they are URL-safe and never change. */
export const TenantSlug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/, 'lowercase letters, digits and dashes, 3-63 long')

const Name = z.string().trim().min(1).max(128)
const Description = z.string().max(2000)
const Username = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, 'letters, digits, dot, dash, underscore and @')
export const Password = z.string().min(12).max(1024)

export const Tenant = z.object({
  id: Id,
  slug: TenantSlug,
  displayName: z.string(),
  status: PrincipalStatus,
  issuer: z.url(),
  createdAt: z.iso.datetime(),
})
export type Tenant = z.infer<typeof Tenant>

export const CreateTenantRequest = z.strictObject({
  slug: TenantSlug,
  displayName: Name,
  adminUsername: Username.default('admin'),
  adminPassword: Password.optional(),
})
export type CreateTenantRequest = z.input<typeof CreateTenantRequest>

export const UpdateTenantRequest = z.strictObject({
  displayName: Name.optional(),
  status: PrincipalStatus.optional(),
})

export const Environment = z.object({
  id: Id,
  tenantId: Id,
  name: z.string(),
  description: z.string(),
  createdAt: z.iso.datetime(),
})
export type Environment = z.infer<typeof Environment>

export const CreateEnvironmentRequest = z.strictObject({
  name: Name,
  description: Description.default(''),
})
export const UpdateEnvironmentRequest = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
})

export const User = z.object({
  id: Id,
  tenantId: Id,
  username: z.string(),
  displayName: z.string(),
  status: PrincipalStatus,
  isTenantAdmin: z.boolean(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
})
export type User = z.infer<typeof User>

export const CreateUserRequest = z.strictObject({
  username: Username,
  displayName: Name.optional(),
  password: Password.optional(),
  isTenantAdmin: z.boolean().default(false),
})
export const UpdateUserRequest = z.strictObject({
  displayName: Name.optional(),
  status: PrincipalStatus.optional(),
  isTenantAdmin: z.boolean().optional(),
  password: Password.optional(),
})
/** A created user; `password` is present only when the server generated it, shown this once. */
export const CreatedUser = User.extend({ password: z.string().optional() })

export const ServicePrincipal = z.object({
  id: Id,
  tenantId: Id,
  clientId: Id,
  name: z.string(),
  description: z.string(),
  status: PrincipalStatus,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
})
export type ServicePrincipal = z.infer<typeof ServicePrincipal>

export const CreateServicePrincipalRequest = z.strictObject({
  name: Name,
  description: Description.default(''),
  withSecret: z.boolean().default(true),
})
export const UpdateServicePrincipalRequest = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  status: PrincipalStatus.optional(),
})

export const ServicePrincipalCredential = z.object({
  id: Id,
  kind: z.enum(['secret', 'certificate']),
  hint: z.string(),
  expiresAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
})
export type ServicePrincipalCredential = z.infer<typeof ServicePrincipalCredential>

export const CreateSecretRequest = z.strictObject({
  expiresInDays: z.int().min(1).max(730).default(365),
})
/** The new client secret: shown in this response only, stored hashed. */
export const CreatedSecret = ServicePrincipalCredential.extend({ clientSecret: z.string() })

export const AddCertificateRequest = z.strictObject({
  /** An SPKI public key or X.509 certificate in PEM form, or a public JWK. */
  publicKey: z.union([z.string().min(1).max(16_384), z.record(z.string(), z.unknown())]),
})

export const CreatedServicePrincipal = ServicePrincipal.extend({ secret: CreatedSecret.optional() })

export const RoleAssignment = z.object({
  id: Id,
  environmentId: Id,
  principalType: PrincipalType,
  principalId: Id,
  role: EnvironmentRole,
  createdAt: z.iso.datetime(),
})
export type RoleAssignment = z.infer<typeof RoleAssignment>

export const CreateRoleAssignmentRequest = z.strictObject({
  principalType: PrincipalType,
  principalId: Id,
  role: EnvironmentRole,
})

export const Me = z.object({
  principalType: PrincipalType,
  id: Id,
  name: z.string(),
  tenant: Tenant,
  isTenantAdmin: z.boolean(),
  isPlatformAdmin: z.boolean(),
  scopes: z.array(z.string()),
  roles: z.array(
    z.object({ environmentId: Id, environmentName: z.string(), role: EnvironmentRole }),
  ),
})
export type Me = z.infer<typeof Me>

export const ListOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) })
