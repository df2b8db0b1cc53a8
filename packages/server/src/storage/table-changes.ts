/**
 * Which tables may have changed, as this process sees them: a generation per table that every
 * write made through the database handle moves on. A read kept in memory (`prepareQuery`'s
 * `cached`) is served again only while the generations of the tables it read stay the same.
 *
 * The driver is wrapped, so no write can slip past: a write moves its tables on when it runs
 * (a read that starts later must not be kept from before it) and again when its transaction
 * ends (a read that ran meanwhile may have seen the table as it was before). A delete, and any
 * statement whose tables are not known (raw SQL, schema changes), moves every table on:
 * deletes cascade to other tables.
 *
 * Only writes made through this handle are seen. The handle must be the only writer of its
 * database for a kept read to be trusted: that is the embedded SQLite file (the server holds
 * it), not a PostgreSQL database that several replicas share.
 *
 * @module
 */
import type {
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  Driver,
  QueryResult,
  RootOperationNode,
  TransactionSettings,
} from 'kysely'

export interface TableChanges {
  /** A number that changes whenever one of `tables` may have changed. */
  generation(tables: readonly string[]): number
}

/** The tables a statement writes; `all` when they cannot be told apart; empty for a read. */
type Written = readonly string[] | 'all'

/** By database handle (a `Kysely` instance). */
const registry = new WeakMap<object, TableChanges>()

/** The change tracking of the handle `db`, when it is the only writer of its database. */
export function tableChangesOf(db: object): TableChanges | undefined {
  return registry.get(db)
}

export function registerTableChanges(db: object, changes: TableChanges): void {
  registry.set(db, changes)
}

/** Every table a query names, anywhere in it (subqueries and joins included). */
export function tablesOf(node: unknown, found = new Set<string>()): Set<string> {
  if (typeof node !== 'object' || node === null) return found
  if (Array.isArray(node)) {
    for (const item of node) tablesOf(item, found)
    return found
  }
  const record = node as { kind?: unknown; table?: { identifier?: { name?: unknown } } }
  if (record.kind === 'TableNode' && typeof record.table?.identifier?.name === 'string') {
    found.add(record.table.identifier.name)
    return found
  }
  for (const value of Object.values(node)) tablesOf(value, found)
  return found
}

const READ = /^\s*select\b/i

function writtenBy(
  query: RootOperationNode,
  sql: string,
  unreferenced: ReadonlySet<string>,
): Written {
  switch (query.kind) {
    case 'SelectQueryNode':
      return []
    case 'InsertQueryNode':
    case 'UpdateQueryNode':
      return [...tablesOf(query)]
    case 'DeleteQueryNode': {
      // Deletes cascade, but not from a table no foreign key points at.
      const tables = [...tablesOf(query)]
      return tables.length > 0 && tables.every((t) => unreferenced.has(t)) ? tables : 'all'
    }
    case 'RawNode':
      return READ.test(sql) ? [] : 'all'
    default:
      // Schema changes and merges may touch anything.
      return 'all'
  }
}

/**
 * Wraps `dialect` so that every write through it moves the generations of its tables on.
 * `unreferenced`: tables no foreign key points at, whose deletes change only themselves.
 */
export function trackTableChanges(
  dialect: Dialect,
  unreferenced: Iterable<string> = [],
): { dialect: Dialect; changes: TableChanges } {
  const leaves = new Set(unreferenced)
  let counter = 0
  let everythingAt = 0
  const changedAt = new Map<string, number>()
  const classified = new WeakMap<RootOperationNode, Written>()

  function bump(written: Written) {
    counter += 1
    if (written === 'all') everythingAt = counter
    else for (const table of written) changedAt.set(table, counter)
  }

  function written(compiled: CompiledQuery): Written {
    let known = classified.get(compiled.query)
    if (!known) {
      known = writtenBy(compiled.query, compiled.sql, leaves)
      classified.set(compiled.query, known)
    }
    return known
  }

  /** A connection that reports its writes, and holds back the second report to its commit. */
  class TrackedConnection implements DatabaseConnection {
    readonly inner: DatabaseConnection
    inTransaction = false
    readonly pending = new Set<string>()
    pendingAll = false

    constructor(inner: DatabaseConnection) {
      this.inner = inner
    }

    async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
      const tables = written(compiled)
      if (tables !== 'all' && tables.length === 0) return this.inner.executeQuery<R>(compiled)
      bump(tables)
      try {
        return await this.inner.executeQuery<R>(compiled)
      } finally {
        if (!this.inTransaction) bump(tables)
        else if (tables === 'all') this.pendingAll = true
        else for (const table of tables) this.pending.add(table)
      }
    }

    streamQuery<R>(compiled: CompiledQuery, chunkSize?: number) {
      return this.inner.streamQuery<R>(compiled, chunkSize)
    }

    /** The transaction ended (committed or rolled back): its writes are reported again. */
    ended() {
      this.inTransaction = false
      if (this.pendingAll) bump('all')
      else if (this.pending.size > 0) bump([...this.pending])
      this.pending.clear()
      this.pendingAll = false
    }
  }

  const inner = (connection: DatabaseConnection) => (connection as TrackedConnection).inner

  function wrapDriver(driver: Driver): Driver {
    return {
      init: () => driver.init(),
      acquireConnection: async () => new TrackedConnection(await driver.acquireConnection()),
      async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
        await driver.beginTransaction(inner(connection), settings)
        ;(connection as TrackedConnection).inTransaction = true
      },
      async commitTransaction(connection: DatabaseConnection) {
        try {
          await driver.commitTransaction(inner(connection))
        } finally {
          ;(connection as TrackedConnection).ended()
        }
      },
      async rollbackTransaction(connection: DatabaseConnection) {
        try {
          await driver.rollbackTransaction(inner(connection))
        } finally {
          ;(connection as TrackedConnection).ended()
        }
      },
      ...(driver.savepoint && {
        savepoint: (connection, name, compile) =>
          driver.savepoint!(inner(connection), name, compile),
      }),
      ...(driver.rollbackToSavepoint && {
        rollbackToSavepoint: (connection, name, compile) =>
          driver.rollbackToSavepoint!(inner(connection), name, compile),
      }),
      ...(driver.releaseSavepoint && {
        releaseSavepoint: (connection, name, compile) =>
          driver.releaseSavepoint!(inner(connection), name, compile),
      }),
      releaseConnection: (connection) => driver.releaseConnection(inner(connection)),
      destroy: () => driver.destroy(),
    }
  }

  return {
    dialect: {
      createDriver: () => wrapDriver(dialect.createDriver()),
      createQueryCompiler: () => dialect.createQueryCompiler(),
      createAdapter: () => dialect.createAdapter(),
      createIntrospector: (db) => dialect.createIntrospector(db),
    },
    changes: {
      generation(tables) {
        let at = everythingAt
        for (const table of tables) at = Math.max(at, changedAt.get(table) ?? 0)
        return at
      },
    },
  }
}
