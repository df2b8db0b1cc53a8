/**
 * What the machine checks before it acts for a person through a connect-with-sign-in
 * connection. The server that sends the token is not trusted for this: the token must be
 * signed by the tenant's key (from the tenant's JWKS), come from this machine's server, name
 * the target group as audience and carry `desktopflows.execute`, be current, and its tenant
 * must be one the machine's own policy trusts.
 *
 * Trust, from the agent policy (reference §2.9.3):
 * - `join: none`: the machine belongs to nobody's directory → `machineNotJoined`;
 * - `allowedTenants` present: the token's tenant must be listed;
 * - otherwise only the tenant of `join: {type: "tenant"}` is trusted; a domain-joined machine
 *   must list the tenant explicitly → `tenantNotAllowlisted`.
 *
 * @module
 */
import { groupAudience, SIGN_IN_SCOPE } from '@desklink/protocol'
import { decodeJwt, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose'

import type { AgentPolicy } from '../policy/agent-policy.ts'

/** Same signing algorithm as the server's tenant keys. */
const SIGN_IN_ALGORITHMS = ['EdDSA']
const CLOCK_TOLERANCE_SECONDS = 30

export type SignInCheck =
  | { ok: true; tenantId: string; userId: string; username: string }
  | {
      ok: false
      reason: 'machineNotJoined' | 'tenantNotAllowlisted' | 'invalidToken'
      detail: string
    }

export interface SignInTrust {
  /** The server this machine is registered with: tokens must be issued under it. */
  readonly serverUrl: string
  /** The group this machine acts for now. */
  readonly memberOf: string
  readonly policy: AgentPolicy
  /** The key set of an issuer (its JWKS). */
  readonly keysOf: (issuer: string) => JWTVerifyGetKey
  readonly now?: () => Date
}

const refuse = (reason: Extract<SignInCheck, { ok: false }>['reason'], detail: string) =>
  ({ ok: false, reason, detail }) as const

/** The tenants whose sign-in tokens this machine accepts. */
export function trustedTenants(policy: AgentPolicy): readonly string[] {
  if (policy.allowedTenants !== undefined) return policy.allowedTenants
  return policy.join.type === 'tenant' ? [policy.join.tenantId] : []
}

export async function verifySignInToken(
  token: string,
  targetGroupId: string,
  trust: SignInTrust,
): Promise<SignInCheck> {
  if (trust.policy.join.type === 'none') {
    return refuse('machineNotJoined', 'The agent policy joins this machine to no tenant or domain.')
  }
  if (targetGroupId !== trust.memberOf) {
    return refuse('invalidToken', 'This machine is not a member of the target group.')
  }
  let issuer: unknown
  try {
    issuer = decodeJwt(token).iss
  } catch {
    return refuse('invalidToken', 'The token is not a JWT.')
  }
  const prefix = `${trust.serverUrl.replace(/\/$/, '')}/t/`
  if (typeof issuer !== 'string' || !issuer.startsWith(prefix) || issuer.length === prefix.length) {
    return refuse('invalidToken', "The token was not issued by this machine's server.")
  }
  let claims: JWTPayload
  try {
    ;({ payload: claims } = await jwtVerify(token, trust.keysOf(issuer), {
      issuer,
      audience: groupAudience(targetGroupId),
      algorithms: SIGN_IN_ALGORITHMS,
      typ: 'at+jwt',
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['sub', 'exp', 'iat', 'tid', 'scope', 'preferred_username'],
      ...(trust.now && { currentDate: trust.now() }),
    }))
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'invalid'
    return refuse('invalidToken', `The token did not verify (${code}).`)
  }
  const scopes = String(claims.scope).split(' ')
  if (!scopes.includes(SIGN_IN_SCOPE) || claims.ptype !== 'user') {
    return refuse('invalidToken', `The token is not a ${SIGN_IN_SCOPE} token of a person.`)
  }
  const tenantId = String(claims.tid)
  if (!trustedTenants(trust.policy).includes(tenantId)) {
    return refuse('tenantNotAllowlisted', `Tenant ${tenantId} is not trusted by the agent policy.`)
  }
  return {
    ok: true,
    tenantId,
    userId: String(claims.sub),
    username: String(claims.preferred_username),
  }
}

/**
 * The username a signed-in person maps to: on a tenant-joined machine the account of the same
 * name (the part before `@` of an email-like name); on a domain-joined machine the name as the
 * directory gives it (`user@domain` must be of the joined domain).
 */
export function signInUsername(username: string, join: AgentPolicy['join']): string {
  return join.type === 'tenant' ? (username.split('@')[0] ?? username) : username
}
