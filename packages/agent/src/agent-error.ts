/**
 * The agent's coded error: codes from the protocol's agent table, messages for people.
 *
 * @module
 */
import { AGENT_ERROR_CODES, type AgentErrorCode } from '@desklink/protocol'

export class AgentError extends Error {
  /** One of AGENT_ERROR_CODES, or a code the server answered with. */
  readonly code: string
  readonly details: unknown

  constructor(
    code: AgentErrorCode | (string & {}),
    options: { message?: string; details?: unknown; cause?: unknown } = {},
  ) {
    super(options.message ?? (AGENT_ERROR_CODES as Record<string, string>)[code] ?? code, {
      cause: options.cause,
    })
    this.name = 'AgentError'
    this.code = code
    this.details = options.details
  }
}
