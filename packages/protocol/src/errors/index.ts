export type { ApiErrorBody, ErrorCode, ErrorCodeEntry } from './error-codes.ts'
export { ERROR_CODES, isErrorCode } from './error-codes.ts'
