export type { ServerConfig, ServerFlags } from './server-config.ts'
export { resolveServerConfig, SERVER_DEFAULTS } from './server-config.ts'
