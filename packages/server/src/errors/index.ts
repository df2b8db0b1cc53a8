export { AppError, coerceError } from './app-error.ts'
