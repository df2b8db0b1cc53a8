/**
 * SQLite's log is checkpointed by a worker thread, not by the server's own commits (which would
 * then stall the event loop for the copy and its fsyncs); the log starts over while commits
 * keep coming; and the server's connection checkpoints for itself again should the worker fail
 * (and the server hears why, to log it).
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import BetterSqlite3 from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { startWalCheckpointer } from '../../packages/server/src/storage/sqlite/wal-checkpointer.ts'
import { eventually } from '../support/eventually.ts'

const PAGE = 4096

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
      expect(rows[0]?.wal_autocheckpoint).toBe(40_000)

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
      expect(after.rows[0]?.wal_autocheckpoint).toBe(40_000)
    } finally {
      await storage.close()
    }
    // The last connection to close (the worker's, or the server's) removes the log.
    await eventually(() => !existsSync(`${file}-wal`), 'the log is removed after close')
  })

  it('let the log start over while commits keep coming', async () => {
    // The server's connection, and its worker checkpointing every 200 ms rather than every
    // second, so that a few seconds show several rounds even on a busy machine.
    const sqlite = new BetterSqlite3(file)
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = NORMAL')
    const checkpointer = startWalCheckpointer(sqlite, file, { everyMs: 200 })
    try {
      sqlite.exec('create table pad (body blob)')
      const insert = sqlite.prepare('insert into pad values (randomblob(?))')
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
      insert.run(PAGE)
      // Three seconds of commits: each time the worker catches up, the log starts over.
      // Without catching up it starts over once in a long while, if at all, and the log keeps
      // every page written.
      let last = salts()
      let startsOver = 0
      const until = Date.now() + 3000
      while (Date.now() < until) {
        insert.run(PAGE)
        const now = salts()
        if (now !== last) startsOver += 1
        last = now
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      expect(startsOver).toBeGreaterThanOrEqual(3)
    } finally {
      await checkpointer.stop()
      sqlite.close()
    }
  })

  it("are taken by the server's connection again when the worker fails", async () => {
    const sqlite = new BetterSqlite3(file)
    sqlite.pragma('journal_mode = WAL')
    try {
      // The worker cannot open a database in a directory that does not exist.
      const failures: unknown[] = []
      const checkpointer = startWalCheckpointer(sqlite, join(dir, 'missing', 'test.db'), {
        onFailure: (error) => failures.push(error),
      })
      expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(40_000)
      await eventually(
        () => sqlite.pragma('wal_autocheckpoint', { simple: true }) === 1000,
        'autocheckpoint restored',
      )
      // ...and the server hears why, to log it.
      expect(failures).toHaveLength(1)
      expect(String(failures[0])).toMatch(/unable to open database file|directory does not exist/i)
      await checkpointer.stop()
    } finally {
      sqlite.close()
    }
  })

  it('fall back to the server’s connection even when the one told about it throws', async () => {
    const sqlite = new BetterSqlite3(file)
    sqlite.pragma('journal_mode = WAL')
    try {
      let told = 0
      const checkpointer = startWalCheckpointer(sqlite, join(dir, 'missing', 'test.db'), {
        onFailure: () => {
          told += 1
          throw new Error('the listener failed')
        },
      })
      // Uncaught, the listener's error would end the test run as an unhandled error.
      await eventually(
        () => sqlite.pragma('wal_autocheckpoint', { simple: true }) === 1000,
        'autocheckpoint restored',
      )
      expect(told).toBe(1)
      await checkpointer.stop()
    } finally {
      sqlite.close()
    }
  })
})
