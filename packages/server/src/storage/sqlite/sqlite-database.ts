/**
 * The embedded default: one SQLite file under the data directory, in WAL mode with
 * `synchronous=NORMAL` (durable across process crashes, fast commits), foreign keys on, reads
 * from a large page cache over a memory-mapped file, and checkpoints taken by a worker thread.
 *
 * @module
 */
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'

import { queryLog, type StorageOptions } from '../query-log.ts'
import { type Database, UNREFERENCED_TABLES } from '../schema.ts'
import { registerTableChanges, trackTableChanges } from '../table-changes.ts'
import { startWalCheckpointer } from './wal-checkpointer.ts'

/** An open SQLite database: the query builder, and how to close it (checkpoints first). */
export interface SqliteStorage {
  readonly db: Kysely<Database>
  close(): Promise<void>
}

/** Opens (creating if needed) the SQLite file at `path`; `:memory:` works for tests. */
export function openSqlite(path: string, options: StorageOptions = {}): SqliteStorage {
  const sqlite = new BetterSqlite3(path)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  // Reads served from memory: a 64 MiB page cache, and the file mapped rather than copied
  // page by page through read calls (halves a primary-key read of a run on a small machine).
  sqlite.pragma('cache_size = -65536')
  sqlite.pragma('mmap_size = 268435456')
  // An in-memory database has no log to checkpoint (and no file a second connection could open).
  const checkpointer =
    path === ':memory:' || path === ''
      ? undefined
      : startWalCheckpointer(sqlite, path, { onFailure: options.onCheckpointerFailure })
  // The server is the file's only writer, so reads of rows that seldom change can be kept
  // in memory while their tables do not change (prepared queries marked `cached`).
  const tracked = trackTableChanges(
    new SqliteDialect({ database: withStatementCache(sqlite) }),
    UNREFERENCED_TABLES,
  )
  const db = new Kysely<Database>({ dialect: tracked.dialect, log: queryLog(options) })
  registerTableChanges(db, tracked.changes)
  return {
    db,
    async close() {
      // The worker's connection closes first, so the server's, the last one, checkpoints
      // everything and removes the log (two connections closing at once may both leave it).
      await checkpointer?.stop()
      await db.destroy()
    },
  }
}

const STATEMENT_CACHE_SIZE = 1000

/**
 * Kysely prepares every query anew; preparing costs about as much as running a small query.
 * Statements are kept by their SQL text (Kysely's parameters are bound at run time), and a
 * statement still busy (an open iteration) is never handed out twice.
 */
function withStatementCache(sqlite: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>()
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      const cached = statements.get(sql)
      if (cached && !cached.busy) return cached
      const statement = sqlite.prepare(sql)
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear()
      statements.set(sql, statement)
      return statement
    },
  }
}

/**
 * True when the file stayed locked by another process past the busy timeout (a tool holding a
 * write lock): the database cannot be written now, and a retry may succeed.
 */
export function isSqliteUnavailable(error: unknown): boolean {
  // SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, …); not SQLITE_LOCKED, which is
  // a conflict within one connection: a fault of ours, not a passing state.
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^SQLITE_BUSY(_|$)/.test(code)
}

/** True for a UNIQUE or PRIMARY KEY violation raised by SQLite. */
export function isSqliteUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}
