/**
 * Gives every request an id (a caller's `X-Request-Id` is kept when it is a plain token) and a
 * scoped logger, and logs one line per request. Only the path is logged, never the query
 * string: OAuth redirects carry codes there.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import type { MiddlewareHandler } from 'hono'

import type { Logger } from '../logging/index.ts'
import type { AppEnv } from './app-env.ts'

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/

export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now()
    c.set('receivedAt', started)
    const offered = c.req.header('x-request-id')
    const requestId = offered && SAFE_REQUEST_ID.test(offered) ? offered : randomUUID()
    const scoped = logger.child({ requestId })
    c.set('requestId', requestId)
    c.set('logger', scoped)
    c.header('X-Request-Id', requestId)
    await next()
    scoped.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    )
  }
}
