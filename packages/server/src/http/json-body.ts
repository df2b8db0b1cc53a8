/**
 * Guards for request bodies on API routes: a size limit, and JSON only. Both answer with coded
 * errors before a handler runs.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'

import { AppError } from '../errors/index.ts'
import type { AppEnv } from './app-env.ts'

export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new AppError('PayloadTooLarge', { details: { maxBytes } })
    },
  })
}

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH'])

/** API bodies are JSON; anything else is refused with `UnsupportedMediaType`. */
export const requireJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (WITH_BODY.has(c.req.method)) {
    const type = c.req.header('content-type') ?? ''
    const length = c.req.header('content-length')
    const empty = length === '0'
    if (!empty && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
      throw new AppError('UnsupportedMediaType')
    }
  }
  await next()
}
