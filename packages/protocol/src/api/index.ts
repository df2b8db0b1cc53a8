export * from './connection-schemas.ts'
export * from './credential-schemas.ts'
export * from './identity-schemas.ts'
export * from './machine-schemas.ts'
