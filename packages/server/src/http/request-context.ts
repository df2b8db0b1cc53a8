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

/** When each request reached the HTTP server (headers parsed), before any routing. */
const arrivals = new WeakMap<object, number>()

/** Notes a request's arrival; registered first on the HTTP server's `request` event. */
export function noteArrival(request: object): void {
  arrivals.set(request, performance.now())
}

export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = (c.env as { incoming?: object } | undefined)?.incoming
    const started = (incoming && arrivals.get(incoming)) ?? performance.now()
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
