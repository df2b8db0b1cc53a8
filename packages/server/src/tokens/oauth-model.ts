/**
 * The storage model @node-oauth/oauth2-server drives, built per request for one tenant. The
 * library runs the grant logic (RFC 6749, PKCE per RFC 7636); this model answers its questions
 * from our stores and signs access tokens with the tenant's key.
 *
 * Refresh tokens rotate on every use. A refresh token presented after it was rotated is a
 * replay by someone: the whole family (every token descended from the same sign-in) is
 * revoked, as RFC 9700 §4.14.2 recommends.
 *
 * @module
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'

import { groupOfAudience, SIGN_IN_SCOPE } from '@desklink/protocol'
import type {
  AuthorizationCode,
  AuthorizationCodeModel,
  Client,
  ClientCredentialsModel,
  RefreshToken,
  RefreshTokenModel,
  Token,
  User,
} from '@node-oauth/oauth2-server'

import { hashClientSecret } from '../identity/identity-service.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantRecord } from '../identity/tenant-store.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import type { AccessTokenService, TokenPrincipalType } from './access-token-service.ts'
import { hashOpaque, type OAuthStore } from './oauth-store.ts'
import { findPublicClient, SERVICE_PRINCIPAL_SCOPES } from './public-clients.ts'

export type OAuthModel = AuthorizationCodeModel & ClientCredentialsModel & RefreshTokenModel

interface ModelUser extends User {
  readonly type: TokenPrincipalType
  readonly id: string
}

export interface OAuthModelDeps {
  readonly tenant: TenantRecord
  readonly oauth: OAuthStore
  readonly principals: PrincipalStore
  readonly tokens: AccessTokenService
  readonly clock: Clock
  readonly newId: IdGenerator
  readonly refreshTokenTtlSeconds: number
  /** The `resource` an authorization request names (RFC 8707): a machine group for sign-in. */
  readonly requestedAudience?: string
  /** Set when the request authenticated with a verified `private_key_jwt` assertion. */
  readonly assertion?: { readonly clientId: string; readonly nonce: string }
  readonly onRefreshTokenReuse: (familyId: string, principalId: string) => void
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const sameSecret = (a: string, b: string) => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

export function createOAuthModel(deps: OAuthModelDeps): OAuthModel {
  const { tenant, oauth, principals, tokens, clock } = deps
  const now = () => clock.now().toISOString()
  /** The family of the refresh token being rotated in this request, if any. */
  let rotatingFamily: string | undefined
  /** The audience of the code or refresh token redeemed in this request (null: the API). */
  let grantAudience: string | null = null

  async function isActive(user: ModelUser): Promise<boolean> {
    const found =
      user.type === 'user'
        ? await principals.findUser(tenant.id, user.id)
        : await principals.findServicePrincipal(tenant.id, user.id)
    return found?.status === 'active'
  }

  function publicClient(clientId: string): Client | undefined {
    const known = findPublicClient(clientId)
    // The library wants a redirect URI list; the real check is validateRedirectUri (loopback, any port).
    return (
      known && {
        id: known.id,
        grants: [...known.grants],
        redirectUris: ['http://127.0.0.1/'],
        kind: 'public',
      }
    )
  }

  return {
    async getClient(clientId, clientSecret) {
      const known = publicClient(clientId)
      if (known) return clientSecret ? false : known
      if (!UUID.test(clientId) || !clientSecret) return false
      const sp = await principals.findServicePrincipal(tenant.id, clientId)
      if (!sp || sp.status !== 'active') return false
      const client: Client = { id: sp.id, grants: ['client_credentials'], kind: 'servicePrincipal' }
      if (
        deps.assertion &&
        deps.assertion.clientId === sp.id &&
        sameSecret(clientSecret, deps.assertion.nonce)
      ) {
        return client
      }
      const presented = hashClientSecret(clientSecret)
      const at = now()
      const credentials = await principals.listCredentials(tenant.id, sp.id)
      const match = credentials.some(
        (c) =>
          c.kind === 'secret' &&
          c.secretHash !== null &&
          (c.expiresAt === null || c.expiresAt > at) &&
          sameSecret(c.secretHash, presented),
      )
      return match ? client : false
    },

    getUserFromClient(client) {
      return Promise.resolve({ type: 'servicePrincipal', id: client.id } satisfies ModelUser)
    },

    validateScope(user, client, scope) {
      const allowed =
        client.kind === 'public'
          ? (findPublicClient(client.id)?.scopes ?? [])
          : SERVICE_PRINCIPAL_SCOPES
      const requested = scope && scope.length > 0 ? scope : ['api']
      void user
      if (!requested.every((s) => allowed.includes(s))) return Promise.resolve(false)
      // An authorization request names its resource; a code or refresh grant carries its own.
      const audience = deps.requestedAudience ?? grantAudience ?? undefined
      if (requested.includes(SIGN_IN_SCOPE)) {
        // A sign-in token does one thing for one machine group: no API scope beside it.
        const onlyExecute = requested.every((s) => s === SIGN_IN_SCOPE || s === 'offline_access')
        const namesGroup = audience !== undefined && groupOfAudience(audience) !== undefined
        return Promise.resolve(onlyExecute && namesGroup ? requested : false)
      }
      return Promise.resolve(audience === undefined ? requested : false)
    },

    async validateRedirectUri(redirectUri, client) {
      return Promise.resolve(findPublicClient(client.id)?.allowsRedirect(redirectUri) ?? false)
    },

    async generateAccessToken(client, user, scope) {
      const modelUser = user as ModelUser
      const scopes = scope.filter((s) => s !== 'offline_access')
      // The machine maps a sign-in token's user to an OS account by the user name.
      const person =
        scopes.includes(SIGN_IN_SCOPE) && modelUser.type === 'user'
          ? await principals.findUser(tenant.id, modelUser.id)
          : undefined
      const { token } = await tokens.issue({
        tenant,
        principalType: modelUser.type,
        principalId: modelUser.id,
        clientId: client.id,
        scopes,
        ...(grantAudience !== null && { audience: grantAudience }),
        ...(person && { claims: { preferred_username: person.username } }),
      })
      return token
    },

    generateRefreshToken() {
      return Promise.resolve(randomBytes(32).toString('base64url'))
    },

    async saveToken(token, client, user) {
      const modelUser = user as ModelUser
      const wantsRefresh =
        token.refreshToken !== undefined &&
        client.kind === 'public' &&
        (token.scope ?? []).includes('offline_access')
      const saved: Token = { ...token, client, user }
      if (!wantsRefresh || token.refreshToken === undefined) {
        delete saved.refreshToken
        delete saved.refreshTokenExpiresAt
        return saved
      }
      const expiresAt =
        token.refreshTokenExpiresAt ??
        new Date(clock.now().getTime() + deps.refreshTokenTtlSeconds * 1000)
      await oauth.saveRefreshToken({
        token_hash: hashOpaque(token.refreshToken),
        family_id: rotatingFamily ?? deps.newId(),
        tenant_id: tenant.id,
        client_id: client.id,
        principal_type: modelUser.type,
        principal_id: modelUser.id,
        scope: (token.scope ?? []).join(' '),
        audience: grantAudience,
        expires_at: expiresAt.toISOString(),
        rotated_at: null,
        revoked_at: null,
        created_at: now(),
      })
      return saved
    },

    async getAuthorizationCode(code) {
      const row = await oauth.findCode(tenant.id, code)
      const client = row && publicClient(row.client_id)
      if (!row || !client) return false
      const user: ModelUser = { type: 'user', id: row.user_id }
      if (!(await isActive(user))) return false
      grantAudience = row.audience
      const found: AuthorizationCode = {
        authorizationCode: code,
        expiresAt: new Date(row.expires_at),
        redirectUri: row.redirect_uri,
        scope: row.scope.split(' ').filter(Boolean),
        client,
        user,
      }
      if (row.code_challenge) found.codeChallenge = row.code_challenge
      if (row.code_challenge_method) found.codeChallengeMethod = row.code_challenge_method
      return found
    },

    async saveAuthorizationCode(code, client, user) {
      const modelUser = user as ModelUser
      await oauth.saveCode({
        code_hash: hashOpaque(code.authorizationCode),
        tenant_id: tenant.id,
        client_id: client.id,
        user_id: modelUser.id,
        redirect_uri: code.redirectUri,
        scope: (code.scope ?? []).join(' '),
        code_challenge: code.codeChallenge ?? null,
        code_challenge_method: code.codeChallengeMethod ?? null,
        audience: deps.requestedAudience ?? null,
        expires_at: code.expiresAt.toISOString(),
        created_at: now(),
      })
      return { ...code, client, user }
    },

    revokeAuthorizationCode(code) {
      return oauth.consumeCode(tenant.id, code.authorizationCode)
    },

    async getRefreshToken(refreshToken) {
      const row = await oauth.findRefreshToken(tenant.id, refreshToken)
      if (!row) return false
      if (row.rotated_at !== null || row.revoked_at !== null) {
        await oauth.revokeFamily(tenant.id, row.family_id, now())
        if (row.revoked_at === null) deps.onRefreshTokenReuse(row.family_id, row.principal_id)
        return false
      }
      const client = publicClient(row.client_id)
      const user: ModelUser = { type: row.principal_type, id: row.principal_id }
      if (!client || !(await isActive(user))) return false
      rotatingFamily = row.family_id
      grantAudience = row.audience
      const found: RefreshToken = {
        refreshToken,
        refreshTokenExpiresAt: new Date(row.expires_at),
        scope: row.scope.split(' ').filter(Boolean),
        client,
        user,
      }
      return found
    },

    async revokeToken(token) {
      const rotated = await oauth.rotateRefreshToken(tenant.id, token.refreshToken, now())
      if (!rotated && rotatingFamily) {
        // Lost a race with another use of the same token: that is reuse too.
        await oauth.revokeFamily(tenant.id, rotatingFamily, now())
      }
      return rotated
    },

    getAccessToken() {
      // Access tokens are self-contained JWTs verified by AccessTokenService, never looked up.
      return Promise.resolve(false)
    },
  }
}
