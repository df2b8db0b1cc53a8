/**
 * Opens the configured database and runs migrations. The only place that chooses a dialect:
 * everything above works with `Kysely<Database>` and `StorageHandle.isUniqueViolation`.
 *
 * @module
 */
import { type Kysely, Migrator } from 'kysely'

import { migrationsFor } from './migrations/index.ts'
import {
  createPostgresKysely,
  isPostgresUnavailable,
  isPostgresUniqueViolation,
} from './postgres/postgres-database.ts'
import type { StorageOptions } from './query-log.ts'
import type { Database } from './schema.ts'
import {
  isSqliteUnavailable,
  isSqliteUniqueViolation,
  openSqlite,
} from './sqlite/sqlite-database.ts'

export type DialectName = 'sqlite' | 'postgres'

/** An open database with the few facts about it that code above the stores needs. */
export interface StorageHandle {
  readonly db: Kysely<Database>
  readonly dialect: DialectName
  /** True when `error` is a unique-constraint violation of this database. */
  readonly isUniqueViolation: (error: unknown) => boolean
  /** True when `error` says the database cannot be reached or written now (a retry may work). */
  readonly isUnavailable: (error: unknown) => boolean
  /** Closes the pool or file. Idempotent. */
  close(): Promise<void>
}

/**
 * Opens `location`: a `postgres://` or `postgresql://` URL, or else a SQLite file path
 * (`:memory:` for an in-memory database).
 *
 * @example
 * ```ts
 * const storage = openStorage('./.desklink/desklink.db')
 * await migrateToLatest(storage)
 * ```
 */
export function openStorage(location: string, options: StorageOptions = {}): StorageHandle {
  const isPostgres = /^postgres(ql)?:\/\//i.test(location)
  const opened = isPostgres
    ? { db: createPostgresKysely(location, options), close: undefined }
    : openSqlite(location, options)
  const { db } = opened
  let closed: Promise<void> | undefined
  return {
    db,
    dialect: isPostgres ? 'postgres' : 'sqlite',
    isUniqueViolation: isPostgres ? isPostgresUniqueViolation : isSqliteUniqueViolation,
    isUnavailable: isPostgres ? isPostgresUnavailable : isSqliteUnavailable,
    close: () => (closed ??= opened.close ? opened.close() : db.destroy()),
  }
}

/** One line per migration that ran, or the error that stopped the run. */
export interface MigrationReport {
  readonly applied: readonly string[]
  readonly error?: Error
}

/** Brings the schema to the newest migration; safe when several replicas start at once. */
export async function migrateToLatest(storage: StorageHandle): Promise<MigrationReport> {
  const migrator = new Migrator({ db: storage.db, provider: migrationsFor(storage.dialect) })
  const { error, results } = await migrator.migrateToLatest()
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
  if (error === undefined) return { applied }
  return {
    applied,
    error: error instanceof Error ? error : new Error('Migration failed', { cause: error }),
  }
}
