/**
 * Issues and verifies the short-lived JWT access tokens of every tenant. The issuer of a token
 * names its tenant (`<publicUrl>/t/<slug>`); verification resolves that tenant, takes the key
 * from the tenant's own JWKS and checks issuer, audience, algorithm and expiry with jose.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import { createLocalJWKSet, decodeJwt, type JWTPayload, jwtVerify, SignJWT } from 'jose'

import { AppError } from '../errors/index.ts'
import type { TenantRecord, TenantStore } from '../identity/tenant-store.ts'
import type { Clock } from '../system/index.ts'
import { SIGNING_ALG, type SigningKeyService } from './signing-key-service.ts'

/** The audience of tokens for the Desklink API. */
export const API_AUDIENCE = 'desklink-api'
export const API_SCOPE = 'api'

export type TokenPrincipalType = 'user' | 'servicePrincipal'

export interface AccessTokenClaims extends JWTPayload {
  iss: string
  sub: string
  tid: string
  ptype: TokenPrincipalType
  client_id: string
  scope: string
}

export interface IssueAccessTokenInput {
  readonly tenant: TenantRecord
  readonly principalType: TokenPrincipalType
  readonly principalId: string
  readonly clientId: string
  readonly scopes: readonly string[]
  readonly audience?: string
  /** More claims, e.g. `preferred_username` on sign-in tokens. */
  readonly claims?: Readonly<Record<string, string>>
}

export interface VerifiedAccessToken {
  readonly tenant: TenantRecord
  readonly claims: AccessTokenClaims
  readonly scopes: readonly string[]
}

export interface AccessTokenService {
  readonly issuerOf: (tenant: Pick<TenantRecord, 'slug'>) => string
  issue(input: IssueAccessTokenInput): Promise<{ token: string; expiresAt: Date }>
  /** Throws `InvalidToken` for anything but a valid, current token of an active tenant. */
  verify(token: string, audience?: string): Promise<VerifiedAccessToken>
}

const JWKS_CACHE_MS = 60_000
/** Tokens whose signature held, kept no longer than the key set they were checked with. */
const VERIFIED_CACHE_SIZE = 10_000

export function createAccessTokenService(deps: {
  publicUrl: () => string
  tenants: Pick<TenantStore, 'findTenantBySlug'>
  signingKeys: SigningKeyService
  clock: Clock
  ttlSeconds: number
}): AccessTokenService {
  const { publicUrl, tenants, signingKeys, clock, ttlSeconds } = deps
  const jwksCache = new Map<string, { at: number; set: ReturnType<typeof createLocalJWKSet> }>()
  // A caller sends the same token with every request: its signature is checked once a minute
  // (as often as the key set is re-read); expiry and the tenant are checked every time.
  const verified = new Map<string, { at: number; claims: AccessTokenClaims }>()

  async function keySet(tenantId: string) {
    const cached = jwksCache.get(tenantId)
    if (cached && clock.now().getTime() - cached.at < JWKS_CACHE_MS) return cached.set
    const set = createLocalJWKSet(await signingKeys.jwks(tenantId))
    jwksCache.set(tenantId, { at: clock.now().getTime(), set })
    return set
  }

  const issuerOf = (tenant: Pick<TenantRecord, 'slug'>) => `${publicUrl()}/t/${tenant.slug}`

  return {
    issuerOf,
    async issue(input) {
      const key = await signingKeys.activeKey(input.tenant.id)
      const nowSeconds = Math.floor(clock.now().getTime() / 1000)
      const expiresAt = new Date((nowSeconds + ttlSeconds) * 1000)
      const token = await new SignJWT({
        ...input.claims,
        tid: input.tenant.id,
        ptype: input.principalType,
        client_id: input.clientId,
        scope: input.scopes.join(' '),
      })
        .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerOf(input.tenant))
        .setSubject(input.principalId)
        .setAudience(input.audience ?? API_AUDIENCE)
        .setIssuedAt(nowSeconds)
        .setExpirationTime(nowSeconds + ttlSeconds)
        .setJti(randomUUID())
        .sign(key.privateKey)
      return { token, expiresAt }
    },
    async verify(token, audience = API_AUDIENCE) {
      let unverified: JWTPayload
      try {
        unverified = decodeJwt(token)
      } catch {
        throw new AppError('InvalidToken', { details: { reason: 'malformed' } })
      }
      const prefix = `${publicUrl()}/t/`
      const slug =
        typeof unverified.iss === 'string' && unverified.iss.startsWith(prefix)
          ? unverified.iss.slice(prefix.length)
          : undefined
      const tenant = slug === undefined ? undefined : await tenants.findTenantBySlug(slug)
      if (!tenant || tenant.status !== 'active') {
        throw new AppError('InvalidToken', { details: { reason: 'unknown issuer' } })
      }
      const nowMs = clock.now().getTime()
      const cacheKey = `${audience} ${token}`
      const known = verified.get(cacheKey)
      if (
        known &&
        nowMs - known.at < JWKS_CACHE_MS &&
        (known.claims.exp ?? 0) * 1000 > nowMs &&
        known.claims.tid === tenant.id
      ) {
        return {
          tenant,
          claims: known.claims,
          scopes: known.claims.scope.split(' ').filter(Boolean),
        }
      }
      try {
        const { payload } = await jwtVerify<AccessTokenClaims>(token, await keySet(tenant.id), {
          issuer: issuerOf(tenant),
          audience,
          algorithms: [SIGNING_ALG],
          typ: 'at+jwt',
          currentDate: clock.now(),
          requiredClaims: ['sub', 'exp', 'iat', 'tid', 'ptype', 'scope'],
        })
        if (payload.tid !== tenant.id) throw new Error('tenant mismatch')
        if (verified.size >= VERIFIED_CACHE_SIZE) verified.clear()
        verified.set(cacheKey, { at: nowMs, claims: payload })
        return { tenant, claims: payload, scopes: payload.scope.split(' ').filter(Boolean) }
      } catch (cause) {
        const reason = (cause as { code?: string }).code ?? 'invalid'
        throw new AppError('InvalidToken', { details: { reason }, cause })
      }
    },
  }
}
