/**
 * The one place errors become HTTP responses: `{"error":{"code","message","details"?},"requestId"}`.
 * Domain errors keep their code; framework errors are classified; anything else is logged with
 * the request's scope and answered with a generic `InternalError` that reveals nothing.
 *
 * @module
 */
import { type ApiErrorBody, ERROR_CODES, type ErrorCode } from '@desklink/protocol'
import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

import { AppError } from '../errors/index.ts'
import type { AppEnv } from './app-env.ts'

/** What a client is told to wait before it retries when the database cannot be reached. */
const DATABASE_RETRY_AFTER_SECONDS = 2

/** Writes the error body for `code`. */
export function errorResponse(
  c: Context<AppEnv>,
  code: ErrorCode,
  options: { message?: string; details?: unknown; headers?: Record<string, string> } = {},
): Response {
  const body: ApiErrorBody = {
    error: {
      code,
      message: options.message ?? ERROR_CODES[code].message,
      ...(options.details === undefined ? {} : { details: options.details }),
    },
    requestId: c.get('requestId'),
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) c.header(name, value)
  return c.json(body, ERROR_CODES[code].status as ContentfulStatusCode)
}

/** A refusal that says when to try again says it in `Retry-After` too (RFC 9110 §10.2.3). */
function retryAfterFor(details: unknown): Record<string, string> {
  const seconds = (details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds
  return typeof seconds === 'number' ? { 'Retry-After': String(seconds) } : {}
}

function wwwAuthenticateFor(code: ErrorCode): Record<string, string> {
  if (code === 'AuthenticationRequired') return { 'WWW-Authenticate': 'Bearer realm="desklink"' }
  if (code === 'InvalidToken')
    return { 'WWW-Authenticate': 'Bearer realm="desklink", error="invalid_token"' }
  if (code === 'InsufficientScope') {
    return {
      'WWW-Authenticate': 'Bearer realm="desklink", error="insufficient_scope", scope="api"',
    }
  }
  return {}
}

/**
 * Answers an error. One that says the database cannot be reached now (`isUnavailable`) is a
 * 503 `ServiceUnavailable` with `Retry-After`: clients and workflow engines retry those, where a
 * 500 would make them give up.
 */
export const errorEdge =
  (isUnavailable: (error: unknown) => boolean = () => false): ErrorHandler<AppEnv> =>
  (error, c) => {
    if (error instanceof AppError) {
      return errorResponse(c, error.code, {
        message: error.message,
        details: error.details,
        headers: { ...wwwAuthenticateFor(error.code), ...retryAfterFor(error.details) },
      })
    }
    if (error instanceof HTTPException) {
      // Hono raises these for bodies it cannot parse and for its own limits.
      if (error.status === 413) return errorResponse(c, 'PayloadTooLarge')
      if (error.status === 400) return errorResponse(c, 'InvalidJson')
      if (error.status === 415) return errorResponse(c, 'UnsupportedMediaType')
    }
    if (isUnavailable(error)) {
      c.get('logger').warn({ err: error }, 'the database cannot be reached')
      return errorResponse(c, 'ServiceUnavailable', {
        message: 'The database cannot be reached right now; retry shortly.',
        headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
      })
    }
    c.get('logger').error({ err: error }, 'unhandled error')
    return errorResponse(c, 'InternalError')
  }

export const onNotFound: NotFoundHandler<AppEnv> = (c) => errorResponse(c, 'RouteNotFound')
