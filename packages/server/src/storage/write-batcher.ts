/**
 * Group commit: writes asked for in the same turn of the event loop share one transaction.
 * When the database is idle (nothing committed for a moment) a write starts at once, so a lone
 * write waits for no one; when it is busy, the writes of a turn wait for each other.
 *
 * A commit is the dearest part of a small write (SQLite appends every touched page to its WAL;
 * PostgreSQL waits a round trip and a flush), and a busy server makes many small writes at once:
 * runs admitted, offered, accepted and finished on several machines. Each caller still gets its
 * own result, after the commit that made its write durable, so nothing is answered or sent
 * before it is stored. Should one write of a batch fail, the batch is rolled back and each write
 * is tried again alone, so one bad write never takes the others down with it: that is why a
 * write must only touch the database, and act on the outcome after its promise settles.
 *
 * That holds for a write that fails, not for a commit: a commit that fails leaves its outcome
 * unknown (a connection lost after PostgreSQL committed looks the same as one lost before), so
 * the writes of its batch are not tried again, each caller is told, and a caller for whom it
 * matters reads what was stored before it gives up. (On SQLite a failed commit surely rolled
 * back, but nothing of ours is checked at commit there: only I/O failures get that far.) Nor
 * are the writes of a batch the database could not take at all (out of reach, or locked):
 * alone, each would wait out the same timeout, one after the other.
 *
 * @module
 */
import type { Kysely, Transaction } from 'kysely'

import type { Database } from './schema.ts'

export type Write<T> = (trx: Transaction<Database>) => Promise<T>

export interface WriteBatcher {
  /** Runs `write` in a transaction shared with the writes of this turn; settles after commit. */
  write<T>(write: Write<T>): Promise<T>
}

interface Pending {
  readonly write: Write<unknown>
  resolve(value: unknown): void
  reject(reason: unknown): void
}

/** More writes than this wait for the next transaction, so one commit never grows unbounded. */
const MAX_BATCH = 256
/**
 * A write that comes this long after the last commit finds the database idle and is committed
 * at once; sooner, it waits for the rest of the turn's writes to join it.
 */
const IDLE_AFTER_MS = 2

export function createWriteBatcher(
  db: Kysely<Database>,
  options: {
    /** Whether an error says the database cannot be reached now (`StorageHandle`). */
    readonly isUnavailable?: (error: unknown) => boolean
  } = {},
): WriteBatcher {
  let waiting: Pending[] = []
  let flushing = false
  let lastCommitAt = -Infinity

  async function alone(pending: Pending): Promise<void> {
    try {
      pending.resolve(await db.transaction().execute(pending.write))
    } catch (error) {
      pending.reject(error)
    }
  }

  async function flush(): Promise<void> {
    const batch = waiting.slice(0, MAX_BATCH)
    waiting = waiting.slice(batch.length)
    if (batch.length === 1) {
      await alone(batch[0])
      return
    }
    let results: unknown[]
    let ran = 0
    try {
      results = await db.transaction().execute(async (trx) => {
        const done: unknown[] = []
        for (const pending of batch) done.push(await pending.write(trx))
        ran = done.length
        return done
      })
    } catch (error) {
      // Every write ran and the commit failed: PostgreSQL may have committed and lost its
      // answer, so trying the writes again could store them twice. Or the database cannot be
      // reached: each write alone would only wait for its own timeout, one after the other.
      // Either way each caller is told.
      if (ran === batch.length || options.isUnavailable?.(error) === true)
        for (const pending of batch) pending.reject(error)
      else for (const pending of batch) await alone(pending)
      return
    }
    batch.forEach((pending, i) => pending.resolve(results[i]))
  }

  function run() {
    void flush().finally(() => {
      lastCommitAt = performance.now()
      flushing = false
      schedule()
    })
  }

  function schedule() {
    if (flushing || waiting.length === 0) return
    flushing = true
    // Idle: no one to wait for, so no added latency. Busy: the rest of this turn's writes join
    // before the transaction starts.
    if (performance.now() - lastCommitAt > IDLE_AFTER_MS) queueMicrotask(run)
    else setImmediate(run)
  }

  return {
    write<T>(write: Write<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        waiting.push({ write, resolve: resolve, reject })
        schedule()
      })
    },
  }
}
