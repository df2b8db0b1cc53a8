/**
 * Bearer authentication for API routes: verifies the access token (RFC 6750) with the tenant's
 * keys, requires the `api` scope, and loads the principal, which must still be active. The
 * principal is resolved from the database on every request, so deactivation takes effect at
 * once rather than when the token expires.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import { type AccessTokenService, API_SCOPE } from '../tokens/access-token-service.ts'
import type { AppEnv } from './app-env.ts'

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/

export interface PrincipalAuthDeps {
  tokens: AccessTokenService
  principals: PrincipalStore
}

/** Resolves the principal of an `Authorization` header, or throws the coded refusal. */
export async function authenticatePrincipal(
  deps: PrincipalAuthDeps,
  header: string | undefined,
): Promise<Principal> {
  if (!header) throw new AppError('AuthenticationRequired')
  const match = BEARER.exec(header)
  if (!match?.[1]) throw new AppError('InvalidToken', { details: { reason: 'not a bearer token' } })
  const { tenant, claims, scopes } = await deps.tokens.verify(match[1])
  if (!scopes.includes(API_SCOPE)) {
    throw new AppError('InsufficientScope', { details: { requiredScope: API_SCOPE } })
  }
  let principal: Principal | undefined
  if (claims.ptype === 'user') {
    const user = await deps.principals.findUser(tenant.id, claims.sub)
    if (user) {
      if (user.status !== 'active') throw new AppError('PrincipalDeactivated')
      principal = {
        type: 'user',
        id: user.id,
        name: user.username,
        tenant,
        isTenantAdmin: user.isTenantAdmin,
        isPlatformAdmin: user.isPlatformAdmin,
        scopes,
      }
    }
  } else if (claims.ptype === 'servicePrincipal') {
    const sp = await deps.principals.findServicePrincipal(tenant.id, claims.sub)
    if (sp) {
      if (sp.status !== 'active') throw new AppError('PrincipalDeactivated')
      principal = {
        type: 'servicePrincipal',
        id: sp.id,
        name: sp.name,
        tenant,
        isTenantAdmin: false,
        isPlatformAdmin: false,
        scopes,
      }
    }
  }
  if (!principal) throw new AppError('InvalidToken', { details: { reason: 'unknown principal' } })
  return principal
}

export function authenticate(deps: PrincipalAuthDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = await authenticatePrincipal(deps, c.req.header('authorization'))
    c.set('principal', principal)
    c.get('logger').debug(
      { principalId: principal.id, tenantId: principal.tenant.id },
      'authenticated',
    )
    await next()
  }
}
