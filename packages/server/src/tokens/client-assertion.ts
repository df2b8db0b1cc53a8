/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the service
 * principal signs a short JWT with a key whose public half was registered as its certificate.
 * Checked here: signature against the SP's registered keys, iss = sub = client id, audience
 * (the token endpoint or the issuer), expiry at most 10 minutes ahead, and a `jti` never seen
 * before (replays are refused).
 *
 * @module
 */
import { createLocalJWKSet, decodeJwt, type JWK, jwtVerify } from 'jose'

import type { PrincipalStore } from '../identity/principal-store.ts'
import { ASSERTION_ALGORITHMS } from '../identity/public-key.ts'
import type { TenantRecord } from '../identity/tenant-store.ts'
import type { Clock } from '../system/index.ts'
import type { OAuthStore } from './oauth-store.ts'

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const MAX_LIFETIME_SECONDS = 600

/** Returns the authenticated client id, or undefined when the assertion is not acceptable. */
export async function verifyClientAssertion(
  assertion: string,
  context: {
    tenant: TenantRecord
    issuer: string
    tokenEndpoint: string
    principals: PrincipalStore
    oauth: OAuthStore
    clock: Clock
  },
): Promise<string | undefined> {
  let clientId: string
  try {
    const unverified = decodeJwt(assertion)
    if (typeof unverified.sub !== 'string') return undefined
    clientId = unverified.sub
  } catch {
    return undefined
  }
  const sp = await context.principals
    .findServicePrincipal(context.tenant.id, clientId)
    .catch(() => undefined)
  if (!sp || sp.status !== 'active') return undefined
  const keys = (await context.principals.listCredentials(context.tenant.id, sp.id))
    .filter((c) => c.kind === 'certificate' && c.publicJwk !== null)
    .map((c) => JSON.parse(c.publicJwk ?? '{}') as JWK)
  if (keys.length === 0) return undefined
  try {
    const now = context.clock.now()
    const { payload } = await jwtVerify(assertion, createLocalJWKSet({ keys }), {
      issuer: clientId,
      subject: clientId,
      audience: [context.tokenEndpoint, context.issuer],
      algorithms: [...ASSERTION_ALGORITHMS],
      requiredClaims: ['exp', 'jti'],
      clockTolerance: 30,
      currentDate: now,
    })
    const exp = payload.exp ?? 0
    if (exp - now.getTime() / 1000 > MAX_LIFETIME_SECONDS || typeof payload.jti !== 'string')
      return undefined
    const fresh = await context.oauth.recordAssertion(
      context.tenant.id,
      payload.jti,
      new Date(exp * 1000).toISOString(),
      now.toISOString(),
    )
    return fresh ? clientId : undefined
  } catch {
    return undefined
  }
}
