// Helpers the benchmarks share: signing in as the CLI does, calling the API, the machine
// assertion of the real agent, and a bounded-concurrency pool.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import http from 'node:http'

import { SignJWT } from 'jose'

const TENANT = 'default'
const REDIRECT_URI = 'http://127.0.0.1:45678/callback'

/** Runs `work(i)` for i in [0, n) with at most `limit` in flight; reports every tenth. */
export async function pool(phase, n, limit, work, quiet = false, progress = () => {}) {
  let next = 0
  let done = 0
  const step = Math.max(1, Math.ceil(n / 10))
  const worker = async () => {
    while (next < n) {
      const i = next++
      await work(i)
      done += 1
      if (!quiet && (done % step === 0 || done === n)) progress(phase, done, n)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
}

/**
 * A lean JSON client for load: node:http over kept-alive sockets. `fetch` costs the load
 * generator several times what it costs the server to answer a small request, and on a
 * two-core machine that CPU is taken from the server being measured.
 */
export function leanClient(base, token, sockets = 64) {
  const { hostname, port } = new URL(base)
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets })
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const request = http.request(
        {
          host: hostname,
          port,
          method,
          path: `/api/v1${path}`,
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload !== undefined && {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
            }),
          },
        },
        (response) => {
          const chunks = []
          response.on('data', (chunk) => chunks.push(chunk))
          response.on('end', () =>
            resolve({
              status: response.statusCode,
              headers: response.headers,
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
            }),
          )
          response.on('error', reject)
        },
      )
      request.on('error', reject)
      request.end(payload)
    })
}

export async function postForm(url, form) {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  })
}

/** Authorization code flow with PKCE against the sign-in form (test/support/test-server.ts). */
export async function signIn(base, username, password) {
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  const state = randomBytes(8).toString('hex')
  const authorized = await postForm(`${base}/t/${TENANT}/oauth2/authorize`, {
    response_type: 'code',
    client_id: 'desklink-cli',
    redirect_uri: REDIRECT_URI,
    scope: 'api offline_access',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    username,
    password,
  })
  if (authorized.status !== 302) throw new Error(`sign-in answered ${authorized.status}`)
  const location = new URL(authorized.headers.get('location') ?? '')
  const code = location.searchParams.get('code')
  if (location.searchParams.get('state') !== state || !code)
    throw new Error(`sign-in redirected to ${location}`)
  const exchanged = await postForm(`${base}/t/${TENANT}/oauth2/token`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    client_id: 'desklink-cli',
    code_verifier: verifier,
  })
  if (exchanged.status !== 200)
    throw new Error(`token exchange answered ${exchanged.status}: ${await exchanged.text()}`)
  return (await exchanged.json()).access_token
}

export async function api(base, token, method, path, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`)
  return JSON.parse(text)
}

/** The machine assertion of packages/agent/src/keys/machine-keys.ts. */
export function assertion(machine, audience) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'desklink-machine+jwt' })
    .setIssuer(machine.id)
    .setSubject(machine.id)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(machine.key)
}
