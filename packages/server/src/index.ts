/**
 * The Desklink server: start it with a resolved configuration and a logger.
 *
 * @module
 */
export type { ServerConfig, ServerFlags } from './config/index.ts'
export { resolveServerConfig, SERVER_DEFAULTS } from './config/index.ts'
export type { ResolvedCredential } from './credentials/index.ts'
export type { Logger } from './logging/index.ts'
export { createLogger } from './logging/index.ts'
export type { RunningServer, ServerOverrides } from './main.ts'
export { SERVER_VERSION, startServer } from './main.ts'
