/**
 * SQLite's log is checkpointed by a worker thread, not by the server's own commits (which would
 * then stall the event loop for the copy and its fsyncs); the log starts over while commits
 * keep coming; and the server's connection checkpoints for itself again should the worker fail.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import BetterSqlite3 from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { startWalCheckpointer } from '../../packages/server/src/storage/sqlite/wal-checkpointer.ts'

const PAGE = 4096

async function eventually(check: () => boolean, what: string, withinMs = 5000): Promise<void> {
  const until = Date.now() + withinMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${withinMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

describe('WAL checkpoints of the SQLite database', () => {
  let dir: string
  let file: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'desklink-wal-'))
    file = join(dir, 'test.db')
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('are taken by the worker, not by the commits of the server connection', async () => {
    const storage = openStorage(file)
    try {
      const { rows } = await sql<{
        wal_autocheckpoint: number
      }>`pragma wal_autocheckpoint`.execute(storage.db)
      // The server's own threshold is only a backstop, far above what this test writes.
      expect(rows[0]?.wal_autocheckpoint).toBe(10_000)

      await sql`create table pad (body blob)`.execute(storage.db)
      const pages = 1500
      await storage.db.transaction().execute(async (trx) => {
        for (let i = 0; i < pages; i++)
          await sql`insert into pad values (randomblob(${PAGE}))`.execute(trx)
      })
      // Only a checkpoint moves the pages from the log into the database file.
      await eventually(
        () => statSync(file).size >= pages * PAGE,
        'the database file holds the rows written to the log',
      )
      // Still the worker's doing: it did not fail and hand checkpoints back to the connection.
      const after = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(
        storage.db,
      )
      expect(after.rows[0]?.wal_autocheckpoint).toBe(10_000)
    } finally {
      await storage.close()
    }
    // The last connection to close (the worker's, or the server's) removes the log.
    await eventually(() => !existsSync(`${file}-wal`), 'the log is removed after close')
  })

  it('let the log start over while commits keep coming', async () => {
    const storage = openStorage(file)
    try {
      await sql`create table pad (body blob)`.execute(storage.db)
      // Each start over writes new salts into the log's header (bytes 16 to 24): SQLite then
      // writes from the log's beginning again, so the log stays as small as a checkpoint's
      // worth of commits. Commits come every millisecond or so, so a checkpoint always finds
      // new ones behind those it copies, and must catch up for the log to start over.
      const salts = () => {
        const header = Buffer.alloc(24)
        const fd = openSync(`${file}-wal`, 'r')
        try {
          readSync(fd, header, 0, 24, 0)
        } finally {
          closeSync(fd)
        }
        return header.subarray(16, 24).toString('hex')
      }
      await sql`insert into pad values (randomblob(${PAGE}))`.execute(storage.db)
      // Five seconds of commits: the worker checkpoints every second, and each time it catches
      // up the log starts over. Without catching up it starts over once in a long while, if at
      // all, and the log keeps every page written.
      let last = salts()
      let startsOver = 0
      const until = Date.now() + 5000
      while (Date.now() < until) {
        await sql`insert into pad values (randomblob(${PAGE}))`.execute(storage.db)
        const now = salts()
        if (now !== last) startsOver += 1
        last = now
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      expect(startsOver).toBeGreaterThanOrEqual(3)
    } finally {
      await storage.close()
    }
  })

  it("are taken by the server's connection again when the worker fails", async () => {
    const sqlite = new BetterSqlite3(file)
    sqlite.pragma('journal_mode = WAL')
    try {
      // The worker cannot open a database in a directory that does not exist.
      const checkpointer = startWalCheckpointer(sqlite, join(dir, 'missing', 'test.db'))
      expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000)
      await eventually(
        () => sqlite.pragma('wal_autocheckpoint', { simple: true }) === 1000,
        'autocheckpoint restored',
      )
      await checkpointer.stop()
    } finally {
      sqlite.close()
    }
  })
})
