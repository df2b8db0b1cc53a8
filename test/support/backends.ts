/**
 * The databases every behaviour suite runs against. SQLite always; PostgreSQL when
 * DESKLINK_TEST_DATABASE_URL names a server (CI sets it). Each test file gets a fresh database.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

export type Backend = 'sqlite' | 'postgres'

const postgresAdminUrl = process.env.DESKLINK_TEST_DATABASE_URL

/** The backends this run covers (filter with DESKLINK_TEST_BACKENDS=sqlite,postgres). */
export const BACKENDS: readonly Backend[] = (['sqlite', 'postgres'] as const).filter((backend) => {
  const wanted = process.env.DESKLINK_TEST_BACKENDS?.split(',')
  if (wanted && !wanted.includes(backend)) return false
  return backend === 'sqlite' || Boolean(postgresAdminUrl)
})

if (!postgresAdminUrl && !process.env.DESKLINK_TEST_BACKENDS) {
  process.stderr.write(
    'PostgreSQL half skipped: DESKLINK_TEST_DATABASE_URL is not set (CI sets it; see README).\n',
  )
}

export interface TestDatabase {
  readonly backend: Backend
  /** What to pass as DESKLINK_DATABASE_URL. */
  readonly url: string
  /** Files that hold the database (SQLite), for scans of what was stored. */
  readonly files: readonly string[]
  drop(): Promise<void>
}

export async function createTestDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'desklink-db-'))
    const file = join(dir, 'test.db')
    return {
      backend,
      url: file,
      files: [file, `${file}-wal`, `${file}-shm`],
      drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    }
  }
  if (!postgresAdminUrl) throw new TypeError('DESKLINK_TEST_DATABASE_URL is not set')
  const name = `desklink_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: postgresAdminUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(postgresAdminUrl)
  url.pathname = `/${name}`
  return {
    backend,
    url: url.toString(),
    files: [],
    async drop() {
      const client = new pg.Client({ connectionString: postgresAdminUrl })
      await client.connect()
      await client.query(`drop database if exists ${name} with (force)`)
      await client.end()
    },
  }
}

/** Reads every row of every table as text: for canary scans of what PostgreSQL stored. */
export async function dumpPostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query<{ tablename: string }>(
      "select tablename from pg_tables where schemaname = 'public'",
    )
    let text = ''
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`select * from "${tablename}"`)
      text += JSON.stringify(rows.rows)
    }
    return text
  } finally {
    await client.end()
  }
}
