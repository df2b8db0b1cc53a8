/**
 * Tells a request for a route that exists, with a method it does not take, from one for a route
 * that does not exist: `405 MethodNotAllowed` with the methods it takes in `Allow`, instead of
 * `404 RouteNotFound`, so that a client's mistake reads as what it is.
 *
 * @module
 */
import type { Hono, NotFoundHandler } from 'hono'

import type { AppEnv } from './app-env.ts'
import { errorResponse, onNotFound } from './error-edge.ts'

/** A route's path as a pattern: `:param` is one segment, `*` anything. */
function patternOf(path: string): RegExp {
  const escaped = path
    .split('/')
    .map((segment) =>
      segment.startsWith(':')
        ? '[^/]+'
        : segment === '*'
          ? '.*'
          : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/')
  return new RegExp(`^${escaped}$`)
}

/**
 * The not-found handler of `app`, once every route is registered: routes are read at the first
 * request that finds none (middleware, registered for every method, does not count).
 */
export function notFoundOrWrongMethod(app: Hono<AppEnv>): NotFoundHandler<AppEnv> {
  let routes: { pattern: RegExp; method: string }[] | undefined
  return (c) => {
    routes ??= app.routes
      .filter((route) => route.method !== 'ALL')
      .map((route) => ({ pattern: patternOf(route.path), method: route.method }))
    const allowed = [
      ...new Set(routes.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method)),
    ]
    if (allowed.length === 0) return onNotFound(c)
    return errorResponse(c, 'MethodNotAllowed', {
      message: `${c.req.path} does not take ${c.req.method}; it takes ${allowed.join(', ')}.`,
      headers: { Allow: allowed.join(', ') },
    })
  }
}
