/**
 * The root logger: pino JSON lines, with every field that could hold a secret redacted. The
 * composition root creates it; components derive children with scope fields (`requestId`,
 * `tenantId`, ...).
 *
 * @module
 */
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

/** Paths pino censors wherever they appear in a log object. */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'access_token',
  '*.access_token',
  'refreshToken',
  '*.refreshToken',
  'refresh_token',
  '*.refresh_token',
  'code',
  'code_verifier',
  '*.code_verifier',
  'client_assertion',
  '*.client_assertion',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'masterKey',
  '*.masterKey',
]

/**
 * @example
 * ```ts
 * const logger = createLogger({ level: 'info' })
 * logger.child({ requestId }).info({ status: 200 }, 'request done')
 * ```
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'desklink-server' },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  )
}
