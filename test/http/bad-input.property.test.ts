/**
 * Bad input on every route: wrong types, missing and unknown fields, broken JSON, oversize
 * bodies, wrong content types, and bad, expired, foreign, wrong-audience or wrong-scope
 * tokens. Every answer is a 4xx with a stable code from the protocol's table (or a success for
 * the rare valid input), never a 5xx, and the server keeps serving.
 */
import { randomUUID } from 'node:crypto'

import { ERROR_CODES, isErrorCode } from '@desklink/protocol'
import fc from 'fast-check'
import { generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { LARGE_BODY_ROUTES } from '../../packages/server/src/http/large-bodies.ts'
import { forgeWithTenantKey } from '../support/forge-token.ts'
import {
  ADMIN_PASSWORD,
  api,
  type InProcessTestServer,
  signIn,
  startTestServer,
} from '../support/test-server.ts'

const MAX_BODY = 4096

interface Route {
  readonly method: string
  readonly path: string
}

describe('bad input on every route (SQLite)', () => {
  let t: InProcessTestServer
  let routes: Route[]
  let adminToken: string
  let adminId: string
  let badTokens: Record<string, string>

  beforeAll(async () => {
    t = await startTestServer('sqlite', { DESKLINK_MAX_BODY_BYTES: String(MAX_BODY) })
    const document = (await (await fetch(`${t.url}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>
    }
    routes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
    )
    const tokens = await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)
    adminToken = tokens.access_token
    adminId = (await api(t.url, adminToken, 'GET', '/me')).body.id

    const stranger = await generateKeyPair('EdDSA')
    const now = Math.floor(Date.now() / 1000)
    badTokens = {
      garbage: 'not-a-jwt',
      foreignSignature: await new SignJWT({ tid: randomUUID(), ptype: 'user', scope: 'api' })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
        .setIssuer(`${t.server.publicUrl}/t/default`)
        .setSubject(adminId)
        .setAudience('desklink-api')
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(stranger.privateKey),
      expired: await forgeWithTenantKey(
        t,
        'default',
        { sub: adminId, aud: 'desklink-api' },
        { expiresInSeconds: -60 },
      ),
      wrongAudience: await forgeWithTenantKey(t, 'default', {
        sub: adminId,
        aud: 'some-machine-group',
      }),
      wrongScope: await forgeWithTenantKey(t, 'default', {
        sub: adminId,
        aud: 'desklink-api',
        scope: 'offline_access',
      }),
      wrongType: await forgeWithTenantKey(
        t,
        'default',
        { sub: adminId, aud: 'desklink-api' },
        { typ: 'JWT' },
      ),
      unknownIssuer: await forgeWithTenantKey(
        t,
        'default',
        { sub: adminId, aud: 'desklink-api' },
        { issuer: 'https://elsewhere.example/t/default' },
      ),
    }
  })
  afterAll(async () => t.close())

  async function send(
    route: Route,
    options: { path: string; token?: string; body?: string; contentType?: string },
  ) {
    const response = await fetch(`${t.url}/api/v1${options.path}`, {
      method: route.method,
      headers: {
        ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        ...(options.contentType !== undefined && { 'content-type': options.contentType }),
      },
      ...(options.body !== undefined && route.method !== 'GET' && { body: options.body }),
    })
    const text = await response.text()
    return { status: response.status, text }
  }

  function assertCoded(result: { status: number; text: string }, expectStatus?: number) {
    expect(result.status).toBeLessThan(500)
    if (expectStatus) expect(result.status).toBe(expectStatus)
    if (result.status >= 400) {
      const body = JSON.parse(result.text) as { error: { code: string }; requestId: string }
      expect(isErrorCode(body.error.code)).toBe(true)
      expect(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES].status).toBe(result.status)
      expect(typeof body.requestId).toBe('string')
    }
  }

  const fillPath = (path: string, segment: string) =>
    path.replace(/\{\w+\}/g, encodeURIComponent(segment))

  it('answers arbitrary JSON bodies and path segments with a coded 4xx or a success, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.oneof(fc.string({ maxLength: 40 }), fc.uuid(), fc.constant(adminId)),
        fc.oneof(
          fc.anything({ maxDepth: 3 }),
          fc.dictionary(fc.string({ maxLength: 12 }), fc.anything({ maxDepth: 2 })),
          fc.record({
            name: fc.anything({ maxDepth: 1 }),
            username: fc.anything({ maxDepth: 1 }),
            status: fc.anything({ maxDepth: 1 }),
            role: fc.anything({ maxDepth: 1 }),
            principalId: fc.anything({ maxDepth: 1 }),
            extra: fc.anything({ maxDepth: 1 }),
          }),
        ),
        async (index, segment, body) => {
          const route = routes[index % routes.length]
          const serialized = JSON.stringify(body) ?? 'null'
          const result = await send(route, {
            path: fillPath(route.path, segment),
            token: adminToken,
            body: serialized,
            contentType: 'application/json',
          })
          if (route.method === 'PATCH' && serialized.length < MAX_BODY) {
            expect([200, 400, 403, 404, 409]).toContain(result.status)
          }
          assertCoded(result)
        },
      ),
      { numRuns: 250 },
    )
  })

  it('answers broken JSON with InvalidJson or a validation code, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.string({ minLength: 1, maxLength: 200 }),
        async (index, text) => {
          const withBody = routes.filter((r) => r.method === 'POST' || r.method === 'PATCH')
          const route = withBody[index % withBody.length]
          fc.pre(!isJson(text))
          const result = await send(route, {
            path: fillPath(route.path, randomUUID()),
            token: adminToken,
            body: text,
            contentType: 'application/json',
          })
          assertCoded(result)
          expect(result.status).toBeGreaterThanOrEqual(400)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('refuses oversize bodies with PayloadTooLarge on every route that takes a body', async () => {
    for (const route of routes.filter((r) => r.method === 'POST' || r.method === 'PATCH')) {
      const path = fillPath(route.path, randomUUID())
      // Flow packages and run inputs have limits of their own, larger than the general one.
      const limit =
        LARGE_BODY_ROUTES.find((l) => l.method === route.method && l.path.test(`/api/v1${path}`))
          ?.maxBytes ?? MAX_BODY
      const big = JSON.stringify({ name: 'x'.repeat(limit * 2) })
      const result = await send(route, {
        path,
        token: adminToken,
        body: big,
        contentType: 'application/json',
      })
      assertCoded(result, 413)
      expect(JSON.parse(result.text).error.code).toBe('PayloadTooLarge')
    }
  })

  it('refuses bodies that are not JSON with UnsupportedMediaType', async () => {
    for (const route of routes.filter((r) => r.method === 'POST' || r.method === 'PATCH')) {
      const result = await send(route, {
        path: fillPath(route.path, randomUUID()),
        token: adminToken,
        body: 'name=x',
        contentType: 'application/x-www-form-urlencoded',
      })
      assertCoded(result, 415)
    }
  })

  it('refuses missing, malformed, foreign, expired, wrong-audience, wrong-type and wrong-scope tokens on every route', async () => {
    for (const route of routes) {
      const path = fillPath(route.path, randomUUID())
      const missing = await send(route, { path, body: '{}', contentType: 'application/json' })
      if (route.path.startsWith('/agent/')) {
        // Agent routes authenticate the machine first (registration: the token in the body).
        for (const token of [undefined, ...Object.values(badTokens)]) {
          const result = await send(route, {
            path,
            ...(token && { token }),
            body: '{}',
            contentType: 'application/json',
          })
          const expected =
            route.path === '/agent/register' ? 'InvalidRequestBody' : 'MachineAuthenticationFailed'
          assertCoded(result)
          expect(JSON.parse(result.text).error.code, route.path).toBe(expected)
        }
        continue
      }
      assertCoded(missing, 401)
      expect(JSON.parse(missing.text).error.code).toBe('AuthenticationRequired')
      for (const [kind, token] of Object.entries(badTokens)) {
        const result = await send(route, {
          path,
          token,
          body: '{}',
          contentType: 'application/json',
        })
        expect(result.status, kind).toBe(kind === 'wrongScope' ? 403 : 401)
        assertCoded(result)
        expect(JSON.parse(result.text).error.code, kind).toBe(
          kind === 'wrongScope' ? 'InsufficientScope' : 'InvalidToken',
        )
      }
    }
  })

  it('tells a method a route does not take (405, Allow) from a route that does not exist (404)', async () => {
    for (const route of routes) {
      const path = route.path.replace(/\{[^}]+\}/g, randomUUID())
      const taken = routes.filter((r) => r.path === route.path).map((r) => r.method.toUpperCase())
      const other = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].find((m) => !taken.includes(m))
      if (!other) continue
      const answer = await api(t.url, adminToken, other, path, other === 'GET' ? undefined : {})
      expect(answer.status, `${other} ${route.path}: ${answer.text}`).toBe(405)
      expect(answer.body.error.code).toBe('MethodNotAllowed')
      expect(answer.headers.get('allow')?.split(', ').sort()).toEqual([...taken].sort())
    }
    const missing = await api(t.url, adminToken, 'GET', '/no-such-route')
    expect(missing.status).toBe(404)
    expect(missing.body.error.code).toBe('RouteNotFound')
  })

  it('keeps serving after all of it', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200)
    expect((await api(t.url, adminToken, 'GET', '/me')).status).toBe(200)
    expect(t.logs.filter((line) => line.includes('"unhandled error"'))).toEqual([])
  })
})

function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
