/**
 * PostgreSQL for scale-out: several server replicas share one database.
 *
 * @module
 */
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'

import { queryLog, type StorageOptions } from '../query-log.ts'
import type { Database } from '../schema.ts'

const INT8_OID = 20

/**
 * Connects a pool to `url`. `bigint` results (such as `count(*)`) are parsed to numbers on this
 * pool only, not globally, so SQLite and PostgreSQL rows look alike (design/stack.md, pitfall 3).
 */
export function createPostgresKysely(url: string, options: StorageOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
    },
  })
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: queryLog(options) })
}

/** True for a unique_violation (SQLSTATE 23505). */
export function isPostgresUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}
