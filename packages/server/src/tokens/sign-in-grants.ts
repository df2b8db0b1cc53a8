/**
 * The server side of connect with sign-in. The client (CLI or portal) runs the authorization
 * code flow with PKCE for scope `desktopflows.execute offline_access` and `resource` = the
 * target group, then hands the code and its verifier over; the server redeems them itself, so
 * the refresh token never leaves it. The refresh token is kept sealed under the master key and
 * used to mint a fresh access token whenever a machine needs one (a test now, a run later).
 *
 * Refresh tokens rotate on every use and a reused one revokes its family, so mints of one
 * connection are serialized here.
 *
 * @module
 */
import { groupAudience, SIGN_IN_SCOPE } from '@desklink/protocol'
import { OAuthError } from '@node-oauth/oauth2-server'
import { decodeJwt } from 'jose'

import { AppError } from '../errors/index.ts'
import type { TenantRecord } from '../identity/tenant-store.ts'
import type { SecretBox } from '../secrets/index.ts'
import type { AccessTokenService } from './access-token-service.ts'
import type { AuthorizationServers } from './authorization-server.ts'

/** The public client a sign-in code is issued to (the CLI; the portal uses the same one). */
const SIGN_IN_CLIENT = 'desklink-cli'

export interface SignInCode {
  readonly code: string
  readonly codeVerifier: string
  readonly redirectUri: string
}

export interface MintedSignInToken {
  readonly accessToken: string
  readonly expiresAt: Date
}

export function createSignInGrants(deps: {
  servers: AuthorizationServers
  tokens: AccessTokenService
  secretBox: SecretBox
}) {
  const queues = new Map<string, Promise<unknown>>()
  const sealContext = (connectionId: string) => `sign-in:${connectionId}`

  /** Runs one mint per connection at a time: a parallel refresh would look like token reuse. */
  function serialized<T>(connectionId: string, work: () => Promise<T>): Promise<T> {
    const previous = queues.get(connectionId) ?? Promise.resolve()
    const next = previous.then(work, work)
    const tail = next.catch(() => undefined)
    queues.set(connectionId, tail)
    void tail.then(() => {
      if (queues.get(connectionId) === tail) queues.delete(connectionId)
    })
    return next
  }

  async function checkedToken(accessToken: string, groupId: string) {
    try {
      return await deps.tokens.verify(accessToken, groupAudience(groupId))
    } catch (cause) {
      throw new AppError('SignInFailed', {
        message: 'The sign-in was made for another target; sign in again for this connection.',
        cause,
      })
    }
  }

  return {
    /**
     * Redeems a sign-in code for `userId` and `groupId`. Returns the user's name and the refresh
     * token sealed for the connection; anything else (wrong user, target or scope, used or
     * expired code, PKCE mismatch) is `SignInFailed`.
     */
    async redeem(
      tenant: TenantRecord,
      input: SignInCode,
      expect: { userId: string; groupId: string; connectionId: string },
    ): Promise<{ sealedRefreshToken: string; subject: string }> {
      let body
      try {
        body = await deps.servers.grant(tenant, {
          grant_type: 'authorization_code',
          client_id: SIGN_IN_CLIENT,
          code: input.code,
          code_verifier: input.codeVerifier,
          redirect_uri: input.redirectUri,
        })
      } catch (cause) {
        if (!(cause instanceof OAuthError)) throw cause
        throw new AppError('SignInFailed', { details: { oauthError: cause.name }, cause })
      }
      const verified = await checkedToken(body.access_token, expect.groupId)
      if (verified.claims.ptype !== 'user' || verified.claims.sub !== expect.userId) {
        throw new AppError('SignInFailed', {
          message: 'The sign-in belongs to another user: sign in as yourself.',
        })
      }
      if (!verified.scopes.includes(SIGN_IN_SCOPE) || body.refresh_token === undefined) {
        throw new AppError('SignInFailed', {
          message: `The sign-in must ask for scope '${SIGN_IN_SCOPE} offline_access'.`,
        })
      }
      return {
        sealedRefreshToken: deps.secretBox.seal(
          body.refresh_token,
          sealContext(expect.connectionId),
        ),
        subject: verified.claims.sub,
      }
    },

    /** A fresh access token for the connection; `SignInExpired` when the sign-in no longer holds. */
    mint(
      tenant: TenantRecord,
      connectionId: string,
      /** Reads the stored refresh token and stores the rotated one, inside the serialized step. */
      storage: {
        load: () => Promise<string>
        save: (sealedRefreshToken: string) => Promise<void>
      },
    ): Promise<MintedSignInToken> {
      return serialized(connectionId, async () => {
        const refreshToken = deps.secretBox.open(await storage.load(), sealContext(connectionId))
        let body
        try {
          body = await deps.servers.grant(tenant, {
            grant_type: 'refresh_token',
            client_id: SIGN_IN_CLIENT,
            refresh_token: refreshToken,
          })
        } catch (cause) {
          if (!(cause instanceof OAuthError)) throw cause
          throw new AppError('SignInExpired', { details: { oauthError: cause.name }, cause })
        }
        if (body.refresh_token === undefined) throw new AppError('SignInExpired')
        const sealedRefreshToken = deps.secretBox.seal(
          body.refresh_token,
          sealContext(connectionId),
        )
        await storage.save(sealedRefreshToken)
        return {
          accessToken: body.access_token,
          expiresAt: new Date((decodeJwt(body.access_token).exp ?? 0) * 1000),
        }
      })
    },
  }
}

export type SignInGrants = ReturnType<typeof createSignInGrants>
