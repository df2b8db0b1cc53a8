export type { AgentErrorCode } from './agent-error-codes.ts'
export { AGENT_ERROR_CODES } from './agent-error-codes.ts'
export type { ApiErrorBody, ErrorCode, ErrorCodeEntry } from './error-codes.ts'
export { ERROR_CODES, isErrorCode } from './error-codes.ts'
