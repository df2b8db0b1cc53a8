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
  const tooLarge = () => {
    throw new AppError('PayloadTooLarge', { details: { maxBytes } })
  }
  const counted = bodyLimit({ maxSize: maxBytes, onError: tooLarge })
  return (c, next) => {
    // Decided from the headers when they suffice: looking at the body itself makes the server
    // build a full web Request around the socket, which costs more than most requests.
    if (c.req.header('transfer-encoding') === undefined) {
      const length = c.req.header('content-length')
      if (length === undefined) return next() // HTTP/1.1: no length and no chunks, no body.
      if (/^\d+$/.test(length)) return Number(length) > maxBytes ? tooLarge() : next()
    }
    // Chunked (or a malformed length): counted as it is read.
    return counted(c, next)
  }
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
