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

/** True for a unique_violation (SQLSTATE 23505). */
export function isPostgresUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}
