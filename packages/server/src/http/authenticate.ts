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
import type { TenantRecord } from '../identity/tenant-store.ts'
import { type AccessTokenService, API_SCOPE } from '../tokens/access-token-service.ts'
import type { AppEnv } from './app-env.ts'

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/

export interface PrincipalAuthDeps {
  tokens: AccessTokenService
  principals: PrincipalStore
}

/**
 * A principal of a tenant as the access rules see it, whether or not it is calling now (a run
 * owner is checked when its run is dispatched). Undefined when it does not exist.
 */
export async function loadPrincipal(
  principals: PrincipalStore,
  tenant: TenantRecord,
  type: string,
  id: string,
  scopes: readonly string[] = [],
): Promise<{ principal: Principal; active: boolean } | undefined> {
  if (type === 'user') {
    const user = await principals.findUser(tenant.id, id)
    return (
      user && {
        active: user.status === 'active',
        principal: {
          type: 'user',
          id: user.id,
          name: user.username,
          tenant,
          isTenantAdmin: user.isTenantAdmin,
          isPlatformAdmin: user.isPlatformAdmin,
          scopes,
        },
      }
    )
  }
  if (type === 'servicePrincipal') {
    const sp = await principals.findServicePrincipal(tenant.id, id)
    return (
      sp && {
        active: sp.status === 'active',
        principal: {
          type: 'servicePrincipal',
          id: sp.id,
          name: sp.name,
          tenant,
          isTenantAdmin: false,
          isPlatformAdmin: false,
          scopes,
        },
      }
    )
  }
  return undefined
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
  const loaded = await loadPrincipal(deps.principals, tenant, claims.ptype, claims.sub, scopes)
  if (loaded && !loaded.active) throw new AppError('PrincipalDeactivated')
  const principal = loaded?.principal
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
