/**
 * Which database errors say "cannot be reached or written now" (answered 503, retry) rather than
 * "this statement is wrong" (answered 500): real errors of each database, told apart.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import Database from 'better-sqlite3'
import pg from 'pg'
import { describe, expect, it } from 'vitest'

import { isPostgresUnavailable } from '../../packages/server/src/storage/postgres/postgres-database.ts'
import { isSqliteUnavailable } from '../../packages/server/src/storage/sqlite/sqlite-database.ts'

/** What `run` threw. */
function thrown(run: () => unknown): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  throw new Error('nothing was thrown')
}

describe('errors that say the database cannot be used now', () => {
  it('on SQLite: a file another process keeps locked, not a broken constraint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'desklink-busy-'))
    const holder = new Database(join(dir, 'd.db'))
    const other = new Database(join(dir, 'd.db'))
    try {
      holder.exec('create table t (id text primary key)')
      other.pragma('busy_timeout = 0')
      holder.exec("begin immediate; insert into t values ('a')")
      const busy = thrown(() => other.exec("insert into t values ('b')"))
      expect(isSqliteUnavailable(busy)).toBe(true)
      holder.exec('commit')
      const duplicate = thrown(() => other.exec("insert into t values ('a')"))
      expect(isSqliteUnavailable(duplicate)).toBe(false)
    } finally {
      holder.close()
      other.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('on PostgreSQL: no server to connect to, or a connection that drops', async () => {
    // Nothing listens on a port just freed.
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as { port: number }
    await new Promise((resolve) => probe.close(resolve))
    const refused = await new pg.Client({ host: '127.0.0.1', port }).connect().then(
      () => new Error('connected'),
      (error: unknown) => error,
    )
    expect(isPostgresUnavailable(refused)).toBe(true)

    // A server that closes every connection at once.
    const closing = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve))
    try {
      const { port: closingPort } = closing.address() as { port: number }
      const dropped = await new pg.Client({ host: '127.0.0.1', port: closingPort }).connect().then(
        () => new Error('connected'),
        (error: unknown) => error,
      )
      expect(isPostgresUnavailable(dropped)).toBe(true)
    } finally {
      await new Promise((resolve) => closing.close(resolve))
    }

    // Statements PostgreSQL refused are not that (the codes it sends for them).
    expect(isPostgresUnavailable({ code: '23505', message: 'duplicate key value' })).toBe(false)
    expect(isPostgresUnavailable({ code: '42601', message: 'syntax error' })).toBe(false)
    expect(isPostgresUnavailable(new Error('something else'))).toBe(false)
  })
})
