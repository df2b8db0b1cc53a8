/**
 * Getting tokens from a tenant's authorization server: the authorization code flow with PKCE
 * S256 for people (a browser and a loopback redirect, RFC 8252; or, without a browser, the same
 * sign-in form posted by the CLI), client credentials for service principals (a secret, or a
 * `private_key_jwt` assertion signed with the certificate's private key), and refresh.
 *
 * @module
 */
import { createHash, createPrivateKey, randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

import { SignJWT } from 'jose'

import { CliError } from '../io.ts'

export const CLI_CLIENT_ID = 'desklink-cli'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

export interface TokenSet {
  readonly accessToken: string
  readonly expiresAt: string
  readonly refreshToken?: string
}

export interface ServerMetadata {
  readonly issuer: string
  readonly authorization_endpoint: string
  readonly token_endpoint: string
}

const base64url = (bytes: Buffer) => bytes.toString('base64url')

export async function discover(
  fetchFn: typeof fetch,
  server: string,
  tenant: string,
): Promise<ServerMetadata> {
  const url = `${server.replace(/\/$/, '')}/t/${encodeURIComponent(tenant)}/.well-known/oauth-authorization-server`
  let response: Response
  try {
    response = await fetchFn(url)
  } catch (cause) {
    throw new CliError(
      'ServerUnreachable',
      `Cannot reach ${server}: ${(cause as Error).message}. Is the server running?`,
    )
  }
  if (response.status === 404)
    throw new CliError('TenantNotFound', `No tenant '${tenant}' on ${server}.`)
  if (!response.ok)
    throw new CliError('ServerError', `Discovery failed with HTTP ${response.status}.`)
  return (await response.json()) as ServerMetadata
}

async function tokenRequest(
  fetchFn: typeof fetch,
  metadata: ServerMetadata,
  form: Record<string, string>,
): Promise<TokenSet> {
  const response = await fetchFn(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  })
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>
  if (!response.ok) {
    const code = typeof body.error === 'string' ? body.error : 'token_error'
    const description =
      typeof body.error_description === 'string'
        ? body.error_description
        : `HTTP ${response.status}`
    throw new CliError(code, `Sign-in refused: ${description}`)
  }
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 600
  return {
    accessToken: String(body.access_token),
    expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString(),
    ...(typeof body.refresh_token === 'string' && { refreshToken: body.refresh_token }),
  }
}

/** What a sign-in asks for: the API (the default), or a sign-in connection's scope and target. */
export interface GrantRequest {
  readonly scope: string
  /** RFC 8707 resource, e.g. the machine group of a connect-with-sign-in connection. */
  readonly resource?: string
}

const API_GRANT: GrantRequest = { scope: 'api offline_access' }

/** An authorization code with what redeeming it needs; the CLI hands it on or redeems it. */
export interface AuthorizationCodeGrant {
  readonly code: string
  readonly codeVerifier: string
  readonly redirectUri: string
}

interface PkceRequest {
  readonly verifier: string
  readonly state: string
  readonly url: string
  readonly redirectUri: string
  readonly params: Record<string, string>
}

function pkceRequest(
  metadata: ServerMetadata,
  redirectUri: string,
  grant: GrantRequest,
): PkceRequest {
  const verifier = base64url(randomBytes(32))
  const state = base64url(randomBytes(16))
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: CLI_CLIENT_ID,
    redirect_uri: redirectUri,
    scope: grant.scope,
    state,
    code_challenge: base64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...(grant.resource !== undefined && { resource: grant.resource }),
  }
  return {
    verifier,
    state,
    redirectUri,
    params,
    url: `${metadata.authorization_endpoint}?${new URLSearchParams(params).toString()}`,
  }
}

function exchangeCode(
  fetchFn: typeof fetch,
  metadata: ServerMetadata,
  grant: AuthorizationCodeGrant,
) {
  return tokenRequest(fetchFn, metadata, {
    grant_type: 'authorization_code',
    code: grant.code,
    redirect_uri: grant.redirectUri,
    client_id: CLI_CLIENT_ID,
    code_verifier: grant.codeVerifier,
  })
}

function codeFrom(location: string, state: string): string {
  const url = new URL(location)
  const error = url.searchParams.get('error')
  if (error)
    throw new CliError(
      error,
      `Sign-in refused: ${url.searchParams.get('error_description') ?? error}`,
    )
  if (url.searchParams.get('state') !== state) {
    throw new CliError(
      'StateMismatch',
      'The sign-in answer does not belong to this request; try again.',
    )
  }
  const code = url.searchParams.get('code')
  if (!code) throw new CliError('NoCode', 'The sign-in answer carried no authorization code.')
  return code
}

/**
 * Signs in in a browser: listens on a loopback port, shows (and tries to open) the sign-in URL,
 * and returns the code that comes back.
 */
export async function authorizeInBrowser(options: {
  metadata: ServerMetadata
  showUrl: (url: string) => void
  timeoutMs: number
  grant?: GrantRequest
}): Promise<AuthorizationCodeGrant> {
  let settle!: { resolve: (code: string) => void; reject: (e: Error) => void }
  const received = new Promise<string>((resolve, reject) => (settle = { resolve, reject }))
  let request: PkceRequest | undefined = undefined
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname !== '/callback' || !request) {
      res.writeHead(404).end()
      return
    }
    try {
      const code = codeFrom(`http://127.0.0.1${req.url ?? ''}`, request.state)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end('<!doctype html><title>Desklink</title><p>Signed in. You can close this window.</p>')
      settle.resolve(code)
    } catch (error) {
      res
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
        .end((error as Error).message)
      settle.reject(error as Error)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  request = pkceRequest(
    options.metadata,
    `http://127.0.0.1:${port}/callback`,
    options.grant ?? API_GRANT,
  )
  options.showUrl(request.url)
  const timer = setTimeout(
    () =>
      settle.reject(
        new CliError('SignInTimedOut', 'No sign-in arrived in time; run desklink login again.'),
      ),
    options.timeoutMs,
  )
  try {
    const code = await received
    return { code, codeVerifier: request.verifier, redirectUri: request.redirectUri }
  } finally {
    clearTimeout(timer)
    server.close()
  }
}

/**
 * Signs in without a browser: the CLI fills in the tenant's sign-in form itself. Same
 * authorization code + PKCE flow, for terminals and scripts where no browser is at hand.
 */
export async function authorizeWithPassword(options: {
  fetchFn: typeof fetch
  metadata: ServerMetadata
  username: string
  password: string
  grant?: GrantRequest
}): Promise<AuthorizationCodeGrant> {
  const request = pkceRequest(
    options.metadata,
    'http://127.0.0.1/callback',
    options.grant ?? API_GRANT,
  )
  const response = await options.fetchFn(options.metadata.authorization_endpoint, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      ...request.params,
      username: options.username,
      password: options.password,
    }).toString(),
  })
  const location = response.headers.get('location')
  if (response.status === 401)
    throw new CliError(
      'InvalidCredentials',
      'The user name or password is incorrect, or the account is deactivated.',
    )
  if (response.status !== 302 || !location)
    throw new CliError('SignInFailed', `Sign-in failed with HTTP ${response.status}.`)
  return {
    code: codeFrom(location, request.state),
    codeVerifier: request.verifier,
    redirectUri: request.redirectUri,
  }
}

/** Signs in to the API in a browser. */
export async function signInWithBrowser(options: {
  fetchFn: typeof fetch
  metadata: ServerMetadata
  showUrl: (url: string) => void
  timeoutMs: number
}): Promise<TokenSet> {
  return exchangeCode(options.fetchFn, options.metadata, await authorizeInBrowser(options))
}

/** Signs in to the API with the tenant's sign-in form, posted by the CLI. */
export async function signInWithPassword(options: {
  fetchFn: typeof fetch
  metadata: ServerMetadata
  username: string
  password: string
}): Promise<TokenSet> {
  return exchangeCode(options.fetchFn, options.metadata, await authorizeWithPassword(options))
}

export function clientCredentialsWithSecret(
  fetchFn: typeof fetch,
  metadata: ServerMetadata,
  clientId: string,
  clientSecret: string,
): Promise<TokenSet> {
  return tokenRequest(fetchFn, metadata, {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_secret: clientSecret,
    scope: 'api',
  })
}

/** Client credentials with a `private_key_jwt` assertion (RFC 7523) signed by `privateKeyPem`. */
export async function clientCredentialsWithKey(
  fetchFn: typeof fetch,
  metadata: ServerMetadata,
  clientId: string,
  privateKeyPem: string,
): Promise<TokenSet> {
  const key = createPrivateKey(privateKeyPem)
  const alg =
    key.asymmetricKeyType === 'ed25519'
      ? 'EdDSA'
      : key.asymmetricKeyType === 'ec'
        ? 'ES256'
        : 'RS256'
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(metadata.token_endpoint)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(key)
  return tokenRequest(fetchFn, metadata, {
    grant_type: 'client_credentials',
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: assertion,
    scope: 'api',
  })
}

export function refresh(
  fetchFn: typeof fetch,
  metadata: ServerMetadata,
  refreshToken: string,
): Promise<TokenSet> {
  return tokenRequest(fetchFn, metadata, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: CLI_CLIENT_ID,
  })
}
