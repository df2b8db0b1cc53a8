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
/** How long opening a connection may take before the statement that needed it fails. */
const CONNECT_TIMEOUT_MS = 5_000

/**
 * Connects a pool to `url`. `bigint` results (such as `count(*)`) are parsed to numbers on this
 * pool only, not globally, so SQLite and PostgreSQL rows look alike (design/stack.md, pitfall 3).
 */
export function createPostgresKysely(url: string, options: StorageOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // A database out of reach fails a request in seconds (answered 503), rather than holding it
    // until the network gives up: without this, a connection attempt waits for ever.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
    },
  })
  // Without a listener, an idle connection's failure would be thrown and end the process.
  pool.on('error', (error) => options.onIdleConnectionLost?.(error))
  return new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: { connect: () => checkOut(pool), end: () => pool.end() },
    }),
    log: queryLog(options),
  })
}

/**
 * A connection taken from the pool that survives losing its database: while it is out, the pool
 * does not listen to it, and its failure (the database ended it, the network dropped) would be
 * thrown and end the process. The statement under way fails with it all the same. On release,
 * a connection that failed is handed back with its error, so the pool closes it rather than
 * lend it again.
 */
async function checkOut(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect()
  const release = client.release.bind(client)
  let lost: Error | undefined
  const onError = (error: Error) => {
    lost = error
  }
  client.on('error', onError)
  client.release = (error?: Error | boolean) => {
    client.removeListener('error', onError)
    release(error ?? lost)
  }
  return client
}

/** Errors of a connection that failed or could not be made (no SQLSTATE from the server). */
const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
const CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error)|timeout exceeded when trying to connect/

/**
 * True when `error` says the database cannot be reached now, not that a statement was wrong:
 * the connection failed or could not be made, PostgreSQL is shutting down or starting, or it
 * has no connection left (SQLSTATE class 08 but 08P01, 57P01–57P03, 53300).
 */
export function isPostgresUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  if (typeof code === 'string') {
    // Class 08 is connection exceptions, but for 08P01: a protocol violation can be ours.
    if (CONNECTION_ERRNOS.has(code) || (code.startsWith('08') && code !== '08P01')) return true
    if (['57P01', '57P02', '57P03', '53300'].includes(code)) return true
  }
  return typeof message === 'string' && CONNECTION_LOST.test(message)
}

/** True for a unique_violation (SQLSTATE 23505). */
export function isPostgresUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}
