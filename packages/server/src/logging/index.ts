export type { Logger } from './logger.ts'
export { createLogger, REDACTED_PATHS } from './logger.ts'
