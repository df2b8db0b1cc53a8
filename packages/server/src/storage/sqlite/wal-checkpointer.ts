/**
 * WAL checkpoints off the event loop.
 *
 * In WAL mode SQLite appends each commit to its log and now and then copies the log back into
 * the database file (a checkpoint). By default the commit that fills the log past 1,000 pages
 * does that copy itself, with two `fsync`s, on the thread that committed: on the server's event
 * loop that one commit takes several milliseconds, and every request and agent message behind
 * it waits (most of the slowest 1% of run dispatches on a small machine). Here a worker thread
 * with a connection of its own runs a passive checkpoint (it never blocks a writer or a reader)
 * every second, again at once while commits keep it from copying the whole log: the log starts
 * over from its beginning only after a checkpoint that copied all of it.
 *
 * The server's connection keeps a far larger threshold of its own, a backstop should the worker
 * fall behind, and goes back to SQLite's default should the worker fail; the log file is cut
 * back to a bounded size when it starts over.
 *
 * @module
 */
import { createRequire } from 'node:module'
import type * as WorkerThreads from 'node:worker_threads'
import { Worker } from 'node:worker_threads'

import type BetterSqlite3 from 'better-sqlite3'

/**
 * How often the worker checkpoints; a checkpoint with nothing new to copy costs microseconds.
 * Once a second, not more often: a busy server rewrites the same few pages (the newest rows of
 * runs and their events, their indexes) in every commit, and a checkpoint copies each page once
 * however many commits changed it, then syncs the file. Checkpointing every 200 ms, the worker
 * was copying and syncing about 7% of the time under steady load, and a fifth of the slowest
 * 2% of dispatches fell in those moments; once a second, it is 2–5% of the time and a few of
 * them. A second of log is about 4,000 pages per 1,000 runs/s: 7,500 at the 1,850 runs/s a
 * two-core machine reached, well within the backstop below.
 */
const CHECKPOINT_EVERY_MS = 1000
/** Checkpoints in a row while commits keep coming between them, before waiting again. */
const CATCH_UP_ATTEMPTS = 20
/** SQLite's own default, restored on the server's connection if the worker fails. */
const AUTOCHECKPOINT_PAGES = 1000
/**
 * The server connection's own threshold while the worker runs (about 160 MiB of log): several
 * seconds of commits at full load, so only a worker that stopped keeping up reaches it.
 */
const BACKSTOP_PAGES = 40_000
/** The size the log file is cut back to when it starts over. */
const LOG_SIZE_LIMIT_BYTES = 64 * 1024 * 1024

interface CheckpointerData {
  readonly driver: string
  readonly path: string
  readonly everyMs: number
  readonly attempts: number
}

/**
 * The worker's whole program. It is run from its source text (so the server's bundle and the
 * tests' TypeScript both work without a separate file), so it uses nothing but its argument.
 */
function checkpointLoop(load: NodeRequire): void {
  const threads = load('node:worker_threads') as typeof WorkerThreads
  const data = threads.workerData as CheckpointerData
  const Sqlite = load(data.driver) as typeof BetterSqlite3
  const db = new Sqlite(data.path)
  db.pragma('busy_timeout = 5000')
  // A checkpoint reports the log as it was when it began: commits made while it copied are
  // left for the next one. It is over when a checkpoint found the log as the last one left it.
  const checkpoint = () => {
    let before = -1
    for (let i = 0; i < data.attempts; i++) {
      const [result] = db.pragma('wal_checkpoint(PASSIVE)') as {
        log: number
        checkpointed: number
      }[]
      if (!result || (result.log === before && result.checkpointed >= result.log)) return
      before = result.log
    }
  }
  const timer = setInterval(checkpoint, data.everyMs)
  threads.parentPort?.on('message', () => {
    clearInterval(timer)
    db.close()
    threads.parentPort?.close()
  })
}

export interface WalCheckpointer {
  /** Stops the worker; settles once it closed its connection. The database stays usable. */
  stop(): Promise<void>
}

/**
 * Takes checkpoints of the database at `path` over from `sqlite`, the connection the server
 * writes with.
 */
export function startWalCheckpointer(
  sqlite: BetterSqlite3.Database,
  path: string,
  options: {
    /** How often the worker checkpoints (a test may ask for more often). */
    readonly everyMs?: number
    /** Hears why, should the worker fail. */
    readonly onFailure?: (error: unknown) => void
  } = {},
): WalCheckpointer {
  sqlite.pragma(`journal_size_limit = ${LOG_SIZE_LIMIT_BYTES}`)
  const data: CheckpointerData = {
    driver: createRequire(import.meta.url).resolve('better-sqlite3'),
    path,
    everyMs: options.everyMs ?? CHECKPOINT_EVERY_MS,
    attempts: CATCH_UP_ATTEMPTS,
  }
  let worker: Worker
  try {
    worker = new Worker(`(${checkpointLoop.toString()})(require)`, { eval: true, workerData: data })
  } catch {
    // No worker: the connection checkpoints for itself, as SQLite does by default.
    return { stop: () => Promise.resolve() }
  }
  sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`)
  // A process may exit while the worker lives: the next start recovers the log as usual.
  worker.unref()
  let stopped: Promise<void> | undefined
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  // The worker fails with an error (and then exits), or exits when it should not: either way
  // the connection checkpoints for itself from then on, and the caller hears of it once.
  let failed = false
  const fallBack = (why: unknown) => {
    if (stopped || failed) return
    failed = true
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`)
    try {
      options.onFailure?.(why)
    } catch {
      // Heard or not, the connection checkpoints for itself now: a listener that throws (in a
      // worker's event, where nothing would catch it) must not take the server down.
    }
  }
  worker.on('error', fallBack)
  worker.on('exit', (code) => fallBack(new Error(`the checkpoint worker exited (code ${code})`)))
  return {
    stop() {
      if (!stopped) {
        // Referenced again while it stops, so a process that awaits this does not exit first.
        worker.ref()
        worker.postMessage('stop')
        stopped = exited
      }
      return stopped
    },
  }
}
