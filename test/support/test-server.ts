/**
 * Starts a real server in this process on 127.0.0.1 with a fresh database, captures its log
 * lines, and offers small HTTP helpers for tests: sign-in through the real authorization
 * endpoint, client credentials, and API calls.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'

import {
  createLogger,
  resolveServerConfig,
  type RunningServer,
  type ServerOverrides,
  startServer,
} from '@desklink/server'

import { type Backend, createTestDatabase, type TestDatabase } from './backends.ts'

export const ADMIN_PASSWORD = 'admin-password-for-tests-1'

/** A real server for a test: in this process (`startTestServer`) or its own (`startServerProcess`). */
export interface TestServer {
  url: string
  readonly database: TestDatabase
  readonly dataDir: string
  /** Every log line the server wrote. */
  readonly logs: string[]
  /** Stops the server and starts it again on the same port, database and data directory. */
  restart(): Promise<void>
  close(): Promise<void>
}

/** A server in this process: tests may reach into it (`server`) and hook its database. */
export interface InProcessTestServer extends TestServer {
  server: RunningServer
}

export async function startTestServer(
  backend: Backend,
  env: Record<string, string> = {},
  overrides: ServerOverrides = {},
): Promise<InProcessTestServer> {
  const database = await createTestDatabase(backend)
  const dataDir = mkdtempSync(join(tmpdir(), 'desklink-data-'))
  const logs: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      callback()
    },
  })
  const settings = {
    DESKLINK_DATA_DIR: dataDir,
    DESKLINK_DATABASE_URL: database.url,
    DESKLINK_PORT: '0',
    DESKLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
    DESKLINK_LOG_LEVEL: 'debug',
    ...env,
  }
  const config = resolveServerConfig(settings, {})
  const logger = createLogger({ level: config.logLevel, destination })
  const server = await startServer(config, logger, overrides)
  const running: InProcessTestServer = {
    url: server.url,
    server,
    database,
    dataDir,
    logs,
    async restart() {
      await running.server.close()
      const port = new URL(running.url).port
      running.server = await startServer(
        resolveServerConfig({ ...settings, DESKLINK_PORT: port }, {}),
        logger,
        overrides,
      )
      running.url = running.server.url
    },
    async close() {
      await running.server.close()
      await database.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  return running
}

export interface Tokens {
  readonly access_token: string
  readonly refresh_token?: string
  readonly expires_in: number
  readonly token_type: string
  readonly scope?: string
}

export async function postForm(url: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  })
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export const REDIRECT_URI = 'http://127.0.0.1:45678/callback'

/** Posts the sign-in form of the tenant's authorization endpoint; returns the code. */
export async function authorize(
  base: string,
  tenant: string,
  username: string,
  password: string,
  challenge: string,
  scope = 'api offline_access',
  resource?: string,
): Promise<string> {
  const state = randomBytes(8).toString('hex')
  const response = await postForm(`${base}/t/${tenant}/oauth2/authorize`, {
    response_type: 'code',
    client_id: 'desklink-cli',
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(resource !== undefined && { resource }),
    username,
    password,
  })
  if (response.status !== 302) throw new Error(`sign-in answered ${response.status}`)
  const location = new URL(response.headers.get('location') ?? '')
  if (location.searchParams.get('state') !== state) throw new Error('state mismatch')
  const code = location.searchParams.get('code')
  if (!code) throw new Error(`no code: ${location.toString()}`)
  return code
}

export async function exchangeCode(
  base: string,
  tenant: string,
  code: string,
  verifier: string,
): Promise<Response> {
  return postForm(`${base}/t/${tenant}/oauth2/token`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    client_id: 'desklink-cli',
    code_verifier: verifier,
  })
}

/** Signs a user in with the authorization code flow and returns the token response. */
export async function signIn(
  base: string,
  tenant: string,
  username: string,
  password: string,
): Promise<Tokens> {
  const { verifier, challenge } = pkcePair()
  const code = await authorize(base, tenant, username, password, challenge)
  const response = await exchangeCode(base, tenant, code, verifier)
  if (response.status !== 200)
    throw new Error(`token exchange answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as Tokens
}

export async function clientCredentials(
  base: string,
  tenant: string,
  clientId: string,
  clientSecret: string,
): Promise<Response> {
  return postForm(`${base}/t/${tenant}/oauth2/token`, {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_secret: clientSecret,
  })
}

/** Calls the API; returns status and parsed body. */
export async function api(
  base: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: response.status, body: parsed, text, headers: response.headers }
}
