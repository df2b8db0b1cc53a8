/**
 * Credentials and the secret stores they reference: API shapes. A credential holds a username
 * (plain, or a value in a store) and a reference to its secret; the secret itself is resolved
 * at run time and no API ever returns it.
 *
 * @module
 */
import { z } from 'zod'

import { Id, PrincipalType } from './identity-schemas.ts'

const Name = z.string().trim().min(1).max(100)
const Description = z.string().max(2000)
const Pem = z.string().min(1).max(65_536)
/** Stores are reached over TLS only: secrets never cross the network in the clear. */
const HttpsUrl = z.url({ protocol: /^https$/ })

export const SecretStoreType = z.enum(['hashicorpVault', 'azureKeyVault', 'cyberArkCcp'])
export type SecretStoreType = z.infer<typeof SecretStoreType>

const VaultAuth = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('token'), token: z.string().min(1).max(4096) }),
  z.strictObject({
    method: z.literal('approle'),
    roleId: z.string().min(1).max(512),
    secretId: z.string().min(1).max(512),
    mount: z.string().min(1).max(128).default('approle'),
  }),
])
const AzureAuth = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('clientSecret'), clientSecret: z.string().min(1).max(4096) }),
  z.strictObject({ method: z.literal('certificate'), certificatePem: Pem }),
])

/** Store settings as written: secrets inside are sealed at once and never shown again. */
export const SecretStoreSettings = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hashicorpVault'),
    address: HttpsUrl,
    namespace: z.string().max(256).optional(),
    auth: VaultAuth,
    /** PEM of the CA that issued the Vault server's certificate, when it is a private CA. */
    caCertificate: Pem.optional(),
  }),
  z.strictObject({
    type: z.literal('azureKeyVault'),
    vaultUrl: HttpsUrl,
    tenantId: z.string().min(1).max(128),
    clientId: z.string().min(1).max(128),
    auth: AzureAuth,
    /** Microsoft Entra authority; other clouds or a private endpoint. */
    authorityHost: HttpsUrl.optional(),
    caCertificate: Pem.optional(),
  }),
  z.strictObject({
    type: z.literal('cyberArkCcp'),
    /** The Central Credential Provider base URL (no trailing slash). */
    url: HttpsUrl,
    appId: z.string().min(1).max(256),
    safe: z.string().min(1).max(256),
    folder: z.string().min(1).max(256).default('Root'),
    caCertificate: Pem.optional(),
  }),
])
export type SecretStoreSettings = z.infer<typeof SecretStoreSettings>

export const CreateSecretStoreRequest = z.strictObject({
  name: Name,
  settings: SecretStoreSettings,
})

export const SecretStore = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  type: SecretStoreType,
  /** The non-secret part of the settings (addresses, ids, auth method). */
  summary: z.record(z.string(), z.string()),
  createdAt: z.iso.datetime(),
})
export type SecretStore = z.infer<typeof SecretStore>

/** Where a secret (or a username) lives. */
const BuiltinReference = z.strictObject({
  store: z.literal('builtin'),
  /** Write-only: the secret, sealed at once. Connection credentials need the target group. */
  value: z.string().min(1).max(16_384),
  groupId: Id.optional(),
})
const VaultReference = z.strictObject({
  store: z.literal('hashicorpVault'),
  storeId: Id,
  mount: z.string().min(1).max(128).default('secret'),
  path: z.string().min(1).max(512),
  key: z.string().min(1).max(256),
  version: z.int().min(1).optional(),
})
const AzureReference = z.strictObject({
  store: z.literal('azureKeyVault'),
  storeId: Id,
  secretName: z.string().regex(/^[0-9A-Za-z-]{1,127}$/),
  version: z.string().max(64).optional(),
})
const CyberArkReference = z.strictObject({
  store: z.literal('cyberArkCcp'),
  storeId: Id,
  object: z.string().min(1).max(256),
})

export const SecretReference = z.discriminatedUnion('store', [
  BuiltinReference,
  VaultReference,
  AzureReference,
  CyberArkReference,
])
export type SecretReference = z.infer<typeof SecretReference>

export const UsernameReference = z.union([
  z.strictObject({ value: z.string().min(1).max(256) }),
  z.strictObject({
    fromStore: z.discriminatedUnion('store', [VaultReference, AzureReference, CyberArkReference]),
  }),
])

export const CredentialUsage = z.enum(['connection', 'flow'])

export const CreateCredentialRequest = z.strictObject({
  name: Name,
  description: Description.default(''),
  usage: CredentialUsage,
  username: UsernameReference,
  secret: SecretReference,
})

/** Only name and description change; sending username, secret or usage answers CredentialReferenceImmutable. */
export const UpdateCredentialRequest = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  username: z.unknown().optional(),
  secret: z.unknown().optional(),
  usage: z.unknown().optional(),
})

/** A credential as the API shows it: where the secret lives, never the secret. */
export const Credential = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  description: z.string(),
  usage: CredentialUsage,
  username: z.union([
    z.object({ value: z.string() }),
    z.object({ fromStore: z.record(z.string(), z.unknown()) }),
  ]),
  secret: z.record(z.string(), z.unknown()),
  ownerType: PrincipalType,
  ownerId: Id,
  access: z.enum(['owner', 'coOwner', 'user', 'userCanShare', 'admin']),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
})
export type Credential = z.infer<typeof Credential>

export const CredentialAccess = z.enum(['coOwner', 'user', 'userCanShare'])
export type CredentialAccess = z.infer<typeof CredentialAccess>
export const CreateCredentialShareRequest = z.strictObject({
  principalType: PrincipalType,
  principalId: Id,
  access: CredentialAccess,
})
export const CredentialShare = z.object({
  id: Id,
  principalType: PrincipalType,
  principalId: Id,
  access: CredentialAccess,
  createdAt: z.iso.datetime(),
})

export const CredentialDependencies = z.object({
  connections: z.array(z.object({ id: Id, name: z.string() })),
})

/** A CyberArk application on a machine group: the client certificate is sealed to the group key. */
export const SetCyberArkApplicationRequest = z.strictObject({
  appId: z.string().min(1).max(256),
  /** PEM: the client certificate followed by its private key. */
  certificatePem: Pem,
  description: Description.default(''),
})
export const CyberArkApplication = z.object({
  groupId: Id,
  appId: z.string(),
  description: z.string(),
  certificateSubject: z.string(),
  createdAt: z.iso.datetime(),
})
