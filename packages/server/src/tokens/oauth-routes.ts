/**
 * Each tenant's authorization server, under `/t/<slug>`: metadata (RFC 8414), JWKS, the token
 * endpoint (client credentials with a secret or `private_key_jwt`, authorization code with
 * PKCE S256, refresh token with rotation), the sign-in page of the authorization endpoint, and
 * revocation (RFC 7009).
 *
 * Token endpoint errors use the RFC 6749 §5.2 body (`{"error","error_description"}`) that OAuth
 * client libraries parse; `error` is the stable code there.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'

import {
  OAuthError,
  Request as OAuthRequest,
  Response as OAuthResponse,
} from '@node-oauth/oauth2-server'
import { type Context, Hono } from 'hono'

import { AppError } from '../errors/index.ts'
import type { AppEnv } from '../http/app-env.ts'
import { UNMATCHABLE_HASH, verifyPassword } from '../identity/password-hash.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantRecord, TenantStore } from '../identity/tenant-store.ts'
import type { Logger } from '../logging/index.ts'
import type { Clock } from '../system/index.ts'
import type { AccessTokenService } from './access-token-service.ts'
import type { AuthorizationServers } from './authorization-server.ts'
import { JWT_BEARER_ASSERTION_TYPE, verifyClientAssertion } from './client-assertion.ts'
import type { OAuthStore } from './oauth-store.ts'
import { findPublicClient } from './public-clients.ts'
import { renderErrorPage, renderSignInPage } from './sign-in-page.ts'
import type { SigningKeyService } from './signing-key-service.ts'

export interface OAuthRouteDeps {
  readonly tenants: TenantStore
  readonly principals: PrincipalStore
  readonly oauth: OAuthStore
  readonly tokens: AccessTokenService
  readonly signingKeys: SigningKeyService
  readonly clock: Clock
  readonly servers: AuthorizationServers
  readonly logger: Logger
}

const AUTHORIZE_PARAMS = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'resource',
] as const

type Form = Record<string, string>

async function readForm(c: Context<AppEnv>): Promise<Form> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw new OAuthError('Content-Type must be application/x-www-form-urlencoded', {
      code: 400,
      name: 'invalid_request',
    })
  }
  const params = new URLSearchParams(await c.req.text())
  const form: Form = {}
  for (const [key, value] of params) {
    if (Object.hasOwn(form, key)) {
      throw new OAuthError(`Parameter ${key} is repeated`, { code: 400, name: 'invalid_request' })
    }
    form[key] = value
  }
  return form
}

function headersOf(c: Context<AppEnv>): Record<string, string> {
  const headers: Record<string, string> = {}
  c.req.raw.headers.forEach((value, name) => (headers[name.toLowerCase()] = value))
  return headers
}

function oauthErrorResponse(c: Context<AppEnv>, error: unknown): Response {
  c.header('Cache-Control', 'no-store')
  if (error instanceof OAuthError) {
    // invalid_client is always 401 (RFC 6749 §5.2 allows it and clients handle it uniformly).
    const status = (
      error.name === 'invalid_client'
        ? 401
        : error.code >= 400 && error.code < 500
          ? error.code
          : 400
    ) as 400 | 401
    if (status === 401) c.header('WWW-Authenticate', 'Basic realm="desklink"')
    return c.json(
      { error: error.name, error_description: error.message, requestId: c.get('requestId') },
      status,
    )
  }
  throw error
}

export function createOAuthRoutes(deps: OAuthRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  async function tenantOf(c: Context<AppEnv>): Promise<TenantRecord> {
    const tenant = await deps.tenants.findTenantBySlug(c.req.param('tenant') ?? '')
    if (!tenant || tenant.status !== 'active') throw new AppError('ResourceNotFound')
    return tenant
  }

  app.get('/:tenant/.well-known/oauth-authorization-server', async (c) => {
    const tenant = await tenantOf(c)
    const issuer = deps.tokens.issuerOf(tenant)
    return c.json({
      issuer,
      authorization_endpoint: `${issuer}/oauth2/authorize`,
      token_endpoint: `${issuer}/oauth2/token`,
      revocation_endpoint: `${issuer}/oauth2/revoke`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: [
        'client_secret_basic',
        'client_secret_post',
        'private_key_jwt',
        'none',
      ],
      token_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256'],
      scopes_supported: ['api', 'offline_access', 'desktopflows.execute'],
    })
  })

  app.get('/:tenant/.well-known/jwks.json', async (c) => {
    const tenant = await tenantOf(c)
    c.header('Cache-Control', 'public, max-age=300')
    return c.json(await deps.signingKeys.jwks(tenant.id))
  })

  app.post('/:tenant/oauth2/token', async (c) => {
    const tenant = await tenantOf(c)
    try {
      const form = await readForm(c)
      let assertion: { clientId: string; nonce: string } | undefined
      if (form.client_assertion_type !== undefined || form.client_assertion !== undefined) {
        const issuer = deps.tokens.issuerOf(tenant)
        const clientId =
          form.client_assertion_type === JWT_BEARER_ASSERTION_TYPE && form.client_assertion
            ? await verifyClientAssertion(form.client_assertion, {
                tenant,
                issuer,
                tokenEndpoint: `${issuer}/oauth2/token`,
                principals: deps.principals,
                oauth: deps.oauth,
                clock: deps.clock,
              })
            : undefined
        if (!clientId || (form.client_id !== undefined && form.client_id !== clientId)) {
          throw new OAuthError('Invalid client: the client assertion is not valid', {
            code: 401,
            name: 'invalid_client',
          })
        }
        // The library authenticates clients by secret; a verified assertion stands in for one
        // with a nonce valid for this request only.
        assertion = { clientId, nonce: randomBytes(24).toString('base64url') }
        delete form.client_assertion
        delete form.client_assertion_type
        form.client_id = clientId
        form.client_secret = assertion.nonce
      }
      const body = await deps.servers.grant(tenant, form, {
        headers: headersOf(c),
        ...(assertion && { assertion }),
      })
      c.header('Cache-Control', 'no-store')
      c.header('Pragma', 'no-cache')
      return c.json(body, 200)
    } catch (error) {
      return oauthErrorResponse(c, error)
    }
  })

  app.post('/:tenant/oauth2/revoke', async (c) => {
    const tenant = await tenantOf(c)
    try {
      const form = await readForm(c)
      if (form.token && (form.token_type_hint ?? 'refresh_token') === 'refresh_token') {
        const row = await deps.oauth.findRefreshToken(tenant.id, form.token)
        if (row && row.client_id === form.client_id) {
          await deps.oauth.revokeFamily(tenant.id, row.family_id, deps.clock.now().toISOString())
        }
      }
      // RFC 7009 §2.2: the answer is the same whether or not the token was known.
      return c.body(null, 200)
    } catch (error) {
      return oauthErrorResponse(c, error)
    }
  })

  /** Checks what must hold before a sign-in page is shown; errors are shown, not redirected. */
  function authorizeProblem(params: Form): string | undefined {
    const client = findPublicClient(params.client_id ?? '')
    if (!client) return 'The application asking you to sign in is not known to this server.'
    if (!params.redirect_uri || !client.allowsRedirect(params.redirect_uri)) {
      return 'The application asked to return to an address it is not allowed to use.'
    }
    if (params.response_type !== 'code') return 'Only response_type=code is supported.'
    if (!params.code_challenge || params.code_challenge_method !== 'S256') {
      return 'PKCE with code_challenge_method=S256 is required.'
    }
    if (!params.state) return 'The state parameter is required.'
    return undefined
  }

  const pick = (source: Form): Form => {
    const params: Form = {}
    for (const name of AUTHORIZE_PARAMS) if (source[name] !== undefined) params[name] = source[name]
    return params
  }

  app.get('/:tenant/oauth2/authorize', async (c) => {
    const tenant = await tenantOf(c)
    const params = pick(c.req.query())
    const problem = authorizeProblem(params)
    if (problem) return c.html(renderErrorPage('Sign-in request not valid', problem), 400)
    return c.html(renderSignInPage({ tenantName: tenant.displayName, action: c.req.path, params }))
  })

  app.post('/:tenant/oauth2/authorize', async (c) => {
    const tenant = await tenantOf(c)
    const form = await readForm(c).catch(() => undefined)
    if (!form)
      return c.html(
        renderErrorPage('Sign-in request not valid', 'The form could not be read.'),
        400,
      )
    const params = pick(form)
    const problem = authorizeProblem(params)
    if (problem) return c.html(renderErrorPage('Sign-in request not valid', problem), 400)

    const username = form.username ?? ''
    const user = await deps.principals.findUserByUsername(tenant.id, username)
    const passwordOk = await verifyPassword(
      form.password ?? '',
      user?.passwordHash ?? UNMATCHABLE_HASH,
    )
    if (!user || !passwordOk || user.status !== 'active') {
      c.get('logger').info({ tenantId: tenant.id, outcome: 'denied' }, 'sign-in failed')
      return c.html(
        renderSignInPage({
          tenantName: tenant.displayName,
          action: c.req.path,
          params,
          username,
          error:
            user && passwordOk
              ? 'This account is deactivated. Ask your administrator.'
              : 'The user name or password is incorrect.',
        }),
        401,
      )
    }
    const request = new OAuthRequest({
      method: 'POST',
      headers: headersOf(c),
      query: params,
      body: {},
    })
    const response = new OAuthResponse({ headers: {} })
    try {
      await deps.servers
        .forTenant(tenant, {
          ...(params.resource !== undefined && { requestedAudience: params.resource }),
        })
        .authorize(request, response, {
          authenticateHandler: { handle: () => ({ type: 'user', id: user.id }) },
        })
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error
      c.get('logger').warn(
        { oauthError: error.name, reason: error.message },
        'authorization refused',
      )
      // The library already put the error on the redirect when the redirect URI was valid.
    }
    const location = response.get('location') as string | undefined
    if (!location)
      return c.html(renderErrorPage('Sign-in failed', 'The request could not be completed.'), 400)
    c.get('logger').info({ tenantId: tenant.id, userId: user.id }, 'signed in')
    return c.redirect(location, 302)
  })

  return app
}
