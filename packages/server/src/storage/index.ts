export type { DialectName, MigrationReport, StorageHandle } from './database.ts'
export { migrateToLatest, openStorage } from './database.ts'
export { LATEST_MIGRATION } from './migrations/index.ts'
export type * from './schema.ts'
