/**
 * Wire types shared by the server, the agent, the CLI and the portal: error codes, API schemas
 * and (later) the agent channel's messages.
 *
 * @module
 */
export * from './agent/index.ts'
export * from './api/index.ts'
export * from './crypto/index.ts'
export * from './errors/index.ts'
export * from './flows/index.ts'
