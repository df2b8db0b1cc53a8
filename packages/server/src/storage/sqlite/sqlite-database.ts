/**
 * The embedded default: one SQLite file under the data directory, in WAL mode with
 * `synchronous=NORMAL` (durable across process crashes, fast commits) and foreign keys on.
 *
 * @module
 */
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'

import type { Database } from '../schema.ts'

/** Opens (creating if needed) the SQLite file at `path`; `:memory:` works for tests. */
export function createSqliteKysely(path: string): Kysely<Database> {
  const sqlite = new BetterSqlite3(path)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
}

/** True for a UNIQUE or PRIMARY KEY violation raised by SQLite. */
export function isSqliteUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}
