export { registerConnectionRoutes } from './connection-routes.ts'
export type { ConnectionService } from './connection-service.ts'
export { createConnectionService } from './connection-service.ts'
