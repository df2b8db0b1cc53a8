/**
 * Desktop flow connections: API shapes.
 *
 * @module
 */
import { z } from 'zod'

import { CreateCredentialRequest } from './credential-schemas.ts'
import { Id, PrincipalType } from './identity-schemas.ts'

/** Accepted forms: `DOMAIN\user`, `MACHINE\user`, `.\user`, `local\user`, `user@domain`, `user`. */
export const ConnectionUsername = z.string().trim().min(1).max(256)

export const ConnectionTarget = z.union([
  z.strictObject({ machineId: Id }),
  z.strictObject({ groupId: Id }),
])

/**
 * Connect with sign-in: the authorization code the client got for scope
 * `desktopflows.execute offline_access` and `resource` = the target group, with its PKCE
 * verifier. The server redeems it; the tokens never pass through the client.
 */
export const SignInCode = z.strictObject({
  code: z.string().min(1).max(512),
  codeVerifier: z.string().min(43).max(128),
  redirectUri: z.string().min(1).max(2048),
})

export const CreateConnectionRequest = z.union([
  z.strictObject({
    /** Chosen by the client: the sealed password is bound to it (context `connection:<id>`). */
    id: Id,
    name: z.string().trim().min(1).max(100),
    target: ConnectionTarget,
    username: ConnectionUsername,
    /** Sealed to the target group's public key by the client (the CLI does). */
    sealedPassword: z.string().min(1).max(16_384),
  }),
  z.strictObject({
    name: z.string().trim().min(1).max(100),
    target: ConnectionTarget,
    username: ConnectionUsername,
    /** Plaintext: the server seals it to the target group at once and drops it. */
    password: z.string().min(1).max(1024),
  }),
  z.strictObject({
    name: z.string().trim().min(1).max(100),
    target: ConnectionTarget,
    credentialId: Id,
  }),
  /** A new credential made in the same call ("New credential"), then used by the connection. */
  z.strictObject({
    name: z.string().trim().min(1).max(100),
    target: ConnectionTarget,
    newCredential: CreateCredentialRequest,
  }),
  /** Connect with sign-in (attended runs only): the machine acts for the signed-in user. */
  z.strictObject({
    name: z.string().trim().min(1).max(100),
    target: ConnectionTarget,
    signIn: SignInCode,
  }),
])

export const ConnectionError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
})

export const Connection = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  targetGroupId: Id,
  type: z.enum(['password', 'credential', 'signIn']),
  username: z.string().nullable(),
  credentialId: Id.nullable(),
  ownerType: PrincipalType,
  ownerId: Id,
  runOwnerType: PrincipalType,
  runOwnerId: Id,
  /** True once a service principal was set as run owner; it can change but never be removed. */
  runOwnerExplicit: z.boolean(),
  /** How the caller may act on it: owner, admin, edit or use. */
  access: z.enum(['owner', 'admin', 'edit', 'use']),
  status: z.enum(['Connected', 'Error', 'FixConnection']),
  error: ConnectionError.nullable(),
  /** The OS account the username mapped to on the machine that tested it. */
  osAccount: z.string().nullable(),
  lastTestedAt: z.iso.datetime().nullable(),
  lastUsedAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
})
export type Connection = z.infer<typeof Connection>

/** The connection inventory: which flows ran through it, on which machines, as which run owner. */
export const ConnectionUsage = z.object({
  flowId: Id,
  flowName: z.string(),
  machineId: Id.nullable(),
  machineName: z.string().nullable(),
  runOwnerType: PrincipalType,
  runOwnerId: Id,
  runs: z.int(),
  lastRunAt: z.iso.datetime(),
})
export type ConnectionUsage = z.infer<typeof ConnectionUsage>

export const SetRunOwnerRequest = z.strictObject({
  servicePrincipalId: Id,
  /**
   * When the caller is not that service principal: a JWT it signed with a registered certificate
   * key, iss = sub = its client id, aud = `connection:<connection id>`, at most 10 minutes, single-use jti.
   */
  assertion: z.string().max(8192).optional(),
})

export const ConnectionShareAccess = z.enum(['use', 'edit'])
export const CreateConnectionShareRequest = z.strictObject({
  principalType: z.literal('servicePrincipal'),
  principalId: Id,
  access: ConnectionShareAccess,
})
export const ConnectionShare = z.object({
  id: Id,
  principalType: z.literal('servicePrincipal'),
  principalId: Id,
  access: ConnectionShareAccess,
  createdAt: z.iso.datetime(),
})

/** The public key a new password for the connection is sealed to (context `connection:<id>`). */
export const ConnectionTargetKey = z.object({ targetGroupId: Id, publicKey: z.string() })
export type ConnectionTargetKey = z.infer<typeof ConnectionTargetKey>

export const UpdateConnectionRequest = z.strictObject({
  name: z.string().trim().min(1).max(100).optional(),
  username: ConnectionUsername.optional(),
  /** Plaintext, sealed by the server at once; or sealedPassword (context `connection:<id>`). */
  password: z.string().min(1).max(1024).optional(),
  sealedPassword: z.string().min(1).max(16_384).optional(),
  /** Sign-in connections: sign in again (same user, same target). */
  signIn: SignInCode.optional(),
})
