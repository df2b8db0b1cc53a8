/**
 * The typed per-request values every route can read with `c.get(...)`.
 *
 * @module
 */
import type { Principal } from '../identity/principal.ts'
import type { Logger } from '../logging/index.ts'

export interface AppEnv {
  Variables: {
    /** Set for every request by the request-context middleware. */
    requestId: string
    /** The request-scoped logger. */
    logger: Logger
    /** `performance.now()` when the request reached the server, for `Server-Timing`. */
    receivedAt: number
    /** Set by `authenticate()` on API routes. */
    principal: Principal
  }
}
