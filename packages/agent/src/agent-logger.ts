/**
 * The logging the agent needs; the process's composition root supplies it (pino there).
 *
 * @module
 */
export interface AgentLogger {
  debug(fields: object, message: string): void
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}
