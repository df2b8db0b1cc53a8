/**
 * Assembles the HTTP application from already-built services: middleware order, the health
 * probes, the OAuth2 servers under `/t`, the API under `/api/v1` and its OpenAPI document.
 *
 * @module
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { Hono, type MiddlewareHandler } from 'hono'
import { secureHeaders } from 'hono/secure-headers'

import type { Logger } from '../logging/index.ts'
import type { AppEnv } from './app-env.ts'
import { errorEdge } from './error-edge.ts'
import { limitBody, requireJsonBody } from './json-body.ts'
import { notFoundOrWrongMethod } from './method-not-allowed.ts'
import { createApiRouter } from './openapi-app.ts'
import { requestContext } from './request-context.ts'

export interface AppParts {
  readonly logger: Logger
  readonly maxBodyBytes: number
  /** Routes that take larger bodies (flow packages, run inputs), matched by method and path. */
  readonly largeBodies?: readonly { method: string; path: RegExp; maxBytes: number }[]
  readonly version: string
  /** Resolves when the server may take work; rejects with the reason it may not. */
  readonly checkReady: () => Promise<void>
  /** Whether an error says the database cannot be reached now (answered 503, not 500). */
  readonly isUnavailable?: (error: unknown) => boolean
  readonly authenticate: MiddlewareHandler<AppEnv>
  readonly oauthRoutes: Hono<AppEnv>
  /** Routes that authenticate themselves (the agent's), registered before principal auth. */
  readonly registerSelfAuthenticatedRoutes: (api: OpenAPIHono<AppEnv>) => void
  readonly registerApiRoutes: (api: OpenAPIHono<AppEnv>) => void
}

export function createApp(parts: AppParts): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.use(requestContext(parts.logger))
  app.use(secureHeaders())
  const defaultLimit = limitBody(parts.maxBodyBytes)
  const largeLimits = (parts.largeBodies ?? []).map((b) => ({ ...b, limit: limitBody(b.maxBytes) }))
  app.use((c, next) => {
    const large = largeLimits.find((b) => b.method === c.req.method && b.path.test(c.req.path))
    return (large?.limit ?? defaultLimit)(c, next)
  })
  app.onError(errorEdge(parts.isUnavailable))
  app.notFound(notFoundOrWrongMethod(app))

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    try {
      await parts.checkReady()
      return c.json({ status: 'ready' })
    } catch {
      return c.json({ status: 'not ready' }, 503)
    }
  })

  app.route('/t', parts.oauthRoutes)

  const api = createApiRouter()
  api.use(requireJsonBody)
  // Hono runs matching handlers in registration order: a self-authenticated route answers
  // before the principal middleware below would run.
  parts.registerSelfAuthenticatedRoutes(api)
  api.use(parts.authenticate)
  parts.registerApiRoutes(api)
  api.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  })
  api.openAPIRegistry.registerComponent('securitySchemes', 'machineAssertion', {
    type: 'apiKey',
    in: 'header',
    name: 'X-Desklink-Machine-Assertion',
    description: 'A short JWT signed with the machine identity key (agent only).',
  })

  const document = api.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Desklink API',
      version: parts.version,
      description:
        'Control plane for desktop flows. Errors: {"error":{"code","message","details"},"requestId"}.',
    },
    servers: [{ url: '/api/v1' }],
  })
  app.get('/api/openapi.json', (c) => c.json(document))
  app.route('/api/v1', api)
  return app
}
