/**
 * Calls the Desklink API as the signed-in profile, renewing the access token when it is about
 * to expire (refresh token for people; client credentials again for service principals).
 * API errors become `CliError`s carrying the server's stable code and request id.
 *
 * @module
 */
import { readFileSync } from 'node:fs'

import { type ApiErrorBody, ERROR_CODES, isErrorCode } from '@desklink/protocol'

import { CliError, type CliIo } from '../io.ts'
import {
  clientCredentialsWithKey,
  clientCredentialsWithSecret,
  discover,
  refresh,
  type TokenSet,
} from './oauth-client.ts'
import { loadProfile, type Profile, saveProfile } from './profile-store.ts'

const RENEW_BEFORE_MS = 60_000

export interface ApiClient {
  readonly profile: Profile
  /** A current access token, renewed first when it is about to expire. */
  accessToken(): Promise<string>
  request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>
  /** As `request`, with the answer's status, for a command whose message depends on it. */
  send<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>
}

async function renew(io: CliIo, profile: Profile): Promise<TokenSet> {
  const metadata = await discover(io.fetch, profile.server, profile.tenant)
  if (profile.principalType === 'user') {
    if (!profile.refreshToken)
      throw new CliError('SignInExpired', 'Your sign-in expired: run desklink login.')
    return refresh(io.fetch, metadata, profile.refreshToken).catch(() => {
      throw new CliError(
        'SignInExpired',
        'Your sign-in expired or was revoked: run desklink login.',
      )
    })
  }
  if (profile.clientSecret) {
    return clientCredentialsWithSecret(io.fetch, metadata, profile.clientId, profile.clientSecret)
  }
  if (profile.privateKeyFile) {
    return clientCredentialsWithKey(
      io.fetch,
      metadata,
      profile.clientId,
      readFileSync(profile.privateKeyFile, 'utf8'),
    )
  }
  throw new CliError('SignInExpired', 'The token expired: run desklink login again.')
}

export function apiClientFor(io: CliIo): ApiClient {
  const profile = loadProfile(io)
  if (!profile) {
    throw new CliError('NotSignedIn', 'Not signed in: run desklink login first.', { exitCode: 2 })
  }
  let current: Profile = profile
  async function renewIfNeeded(): Promise<void> {
    if (Date.parse(current.accessTokenExpiresAt) - Date.now() >= RENEW_BEFORE_MS) return
    const tokens = await renew(io, current)
    current = {
      ...current,
      accessToken: tokens.accessToken,
      accessTokenExpiresAt: tokens.expiresAt,
      ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
    }
    saveProfile(io, current)
  }
  return {
    get profile() {
      return current
    },
    async accessToken() {
      await renewIfNeeded()
      return current.accessToken
    },
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      return (await send<T>(method, path, body)).body
    },
    send,
  }

  async function send<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    await renewIfNeeded()
    let response: Response
    try {
      response = await io.fetch(`${current.server}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${current.accessToken}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      })
    } catch (cause) {
      throw new CliError(
        'ServerUnreachable',
        `Cannot reach ${current.server}: ${(cause as Error).message}`,
      )
    }
    if (response.status === 204) return { status: 204, body: undefined as T }
    const payload: unknown = await response.json().catch(() => undefined)
    if (!response.ok) {
      const error = (payload as Partial<ApiErrorBody> | undefined)?.error
      const code = error?.code ?? 'HttpError'
      const remediation = isErrorCode(code) ? ` ${ERROR_CODES[code].remediation}` : ''
      // A message ends as a sentence before what to do follows it.
      const message = (error?.message ?? `HTTP ${response.status}`).replace(/([^.!?])$/, '$1.')
      throw new CliError(code, `${message}${remediation}`, {
        details: error?.details,
        requestId:
          (payload as ApiErrorBody | undefined)?.requestId ??
          response.headers.get('x-request-id') ??
          undefined,
      })
    }
    return { status: response.status, body: payload as T }
  }
}
