/**
 * The one error type domain code throws for bad input or refused operations. The HTTP error
 * edge maps `code` to the status and message of the protocol's error table.
 *
 * @module
 */
import { ERROR_CODES, type ErrorCode } from '@desklink/protocol'

/**
 * A coded, user-facing error. `details` must never hold secrets: it is sent to the caller.
 *
 * @example
 * ```ts
 * throw new AppError('ResourceNotFound')
 * throw new AppError('Forbidden', { details: { requiredRole: 'EnvironmentAdmin' } })
 * ```
 */
export class AppError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: unknown

  constructor(
    code: ErrorCode,
    options: { message?: string; details?: unknown; cause?: unknown } = {},
  ) {
    super(options.message ?? ERROR_CODES[code].message, { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.status = ERROR_CODES[code].status
    this.details = options.details
  }
}

/** Normalises anything thrown by code we do not own into an `Error`. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown
  return new Error(typeof thrown === 'string' ? thrown : 'Non-error value thrown', {
    cause: thrown,
  })
}
