export { registerFlowRoutes, toApiFlow } from './flow-routes.ts'
export type { FlowService, FlowView } from './flow-service.ts'
export { createFlowService } from './flow-service.ts'
