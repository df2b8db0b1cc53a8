export * from './identity-schemas.ts'
