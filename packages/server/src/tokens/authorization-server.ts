/**
 * Builds the OAuth2 server of one tenant for one request (@node-oauth/oauth2-server over our
 * model), and runs token grants in process: the token endpoint uses it, and so does the server
 * itself when it redeems a connect-with-sign-in code or refreshes that connection's token.
 *
 * @module
 */
import OAuth2Server, {
  Request as OAuthRequest,
  Response as OAuthResponse,
} from '@node-oauth/oauth2-server'

import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantRecord } from '../identity/tenant-store.ts'
import type { Logger } from '../logging/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import type { AccessTokenService } from './access-token-service.ts'
import { createOAuthModel } from './oauth-model.ts'
import type { OAuthStore } from './oauth-store.ts'

export interface AuthorizationServerDeps {
  readonly principals: PrincipalStore
  readonly oauth: OAuthStore
  readonly tokens: AccessTokenService
  readonly clock: Clock
  readonly newId: IdGenerator
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlSeconds: number
  readonly logger: Logger
}

export interface RequestOptions {
  /** A verified `private_key_jwt` assertion standing in for the client secret. */
  readonly assertion?: { readonly clientId: string; readonly nonce: string }
  /** The RFC 8707 `resource` of an authorization request. */
  readonly requestedAudience?: string
}

/** The RFC 6749 §5.1 answer of a successful grant. */
export interface GrantResponse {
  readonly access_token: string
  readonly token_type: string
  readonly expires_in: number
  readonly refresh_token?: string
  readonly scope?: string
}

export function createAuthorizationServers(deps: AuthorizationServerDeps) {
  function forTenant(tenant: TenantRecord, options: RequestOptions = {}): OAuth2Server {
    const model = createOAuthModel({
      tenant,
      oauth: deps.oauth,
      principals: deps.principals,
      tokens: deps.tokens,
      clock: deps.clock,
      newId: deps.newId,
      refreshTokenTtlSeconds: deps.refreshTokenTtlSeconds,
      ...(options.assertion && { assertion: options.assertion }),
      ...(options.requestedAudience !== undefined && {
        requestedAudience: options.requestedAudience,
      }),
      onRefreshTokenReuse: (familyId, principalId) =>
        deps.logger.warn(
          { tenantId: tenant.id, familyId, principalId },
          'refresh token reused: the whole token family is revoked',
        ),
    })
    return new OAuth2Server({
      model,
      accessTokenLifetime: deps.accessTokenTtlSeconds,
      refreshTokenLifetime: deps.refreshTokenTtlSeconds,
      authorizationCodeLifetime: 300,
      allowEmptyState: false,
      alwaysIssueNewRefreshToken: true,
      requireClientAuthentication: { refresh_token: false },
    })
  }

  return {
    forTenant,
    /** Runs the token endpoint's grant for a form; throws the library's OAuthError on refusal. */
    async grant(
      tenant: TenantRecord,
      form: Record<string, string>,
      options: RequestOptions & { headers?: Record<string, string> } = {},
    ): Promise<GrantResponse> {
      const request = new OAuthRequest({
        method: 'POST',
        // The library checks the media type the way Express does, which needs a body length.
        headers: options.headers ?? {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(new URLSearchParams(form).toString())),
        },
        query: {},
        body: form,
      })
      const response = new OAuthResponse({ headers: {} })
      await forTenant(tenant, options).token(request, response)
      return response.body as GrantResponse
    },
  }
}

export type AuthorizationServers = ReturnType<typeof createAuthorizationServers>
