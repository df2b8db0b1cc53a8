/**
 * Stores machines' heartbeats a few at a time. Every connected agent sends one per heartbeat
 * interval (15 s by default), so a thousand machines send about 67 a second. Stored one by one,
 * each took an update and a commit of its own (about 0.12 ms on a two-core machine), on the
 * event loop that also places runs: a run queued meanwhile waited for it. Here the latest
 * heartbeat of each machine waits up to `FLUSH_AFTER_MS`, and is stored with the others in one
 * transaction through one prepared statement.
 *
 * Readers see a machine's sessions and last heartbeat that much later, and none needs them
 * sooner: placement reads sessions from memory (the dispatcher hears every heartbeat), and a
 * machine counts as connected for three heartbeat intervals after its last.
 *
 * A disconnect is stored after the heartbeats that came before it (`settle`), so that a
 * heartbeat stored late never marks a machine that left as connected again.
 *
 * @module
 */
import type { SessionInfo } from '@desklink/protocol'
import type { Kysely } from 'kysely'

import type { Logger } from '../logging/index.ts'
import { type Database, prepareQuery } from '../storage/index.ts'

/** How long a heartbeat waits for others to be stored with. */
const FLUSH_AFTER_MS = 250
/**
 * Heartbeats per transaction, at most: a fleet far larger than a thousand machines still never
 * holds the event loop for long in one go (the rest follow in transactions of their own).
 */
const MAX_PER_TRANSACTION = 64

interface Heartbeat {
  readonly sessions: readonly SessionInfo[]
  /** When it arrived (ISO 8601). */
  readonly at: string
}

export function createHeartbeatRecorder(deps: { db: Kysely<Database>; logger: Logger }) {
  const { db, logger } = deps
  const beat = prepareQuery(db, (q, a: { id: string; sessions: string; at: string }) =>
    q
      .updateTable('machines')
      .set({ sessions: a.sessions, last_heartbeat_at: a.at, connected: 1 })
      .where('id', '=', a.id),
  )
  /** The latest heartbeat of each machine not stored yet. */
  let pending = new Map<string, Heartbeat>()
  let timer: NodeJS.Timeout | undefined
  /** The stores asked for so far, one after another: each starts once the one before ended. */
  let stored: Promise<void> = Promise.resolve()
  let stopped = false

  async function store(beats: readonly [string, Heartbeat][]): Promise<void> {
    await db.transaction().execute(async (trx) => {
      for (const [id, { sessions, at }] of beats)
        await beat.all({ id, sessions: JSON.stringify(sessions), at }, trx)
    })
  }

  /** Stores every heartbeat waiting now; settles once they (and the ones before) are stored. */
  function flush(): Promise<void> {
    clearTimeout(timer)
    timer = undefined
    const beats = [...pending]
    pending = new Map()
    for (let i = 0; i < beats.length; i += MAX_PER_TRANSACTION) {
      const chunk = beats.slice(i, i + MAX_PER_TRANSACTION)
      stored = stored.then(() =>
        store(chunk).catch((error: unknown) =>
          // Lost, not retried: the machine's next heartbeat says the same, a moment later.
          logger.error({ err: error, heartbeats: chunk.length }, 'storing heartbeats failed'),
        ),
      )
    }
    return stored
  }

  return {
    /** A machine's heartbeat arrived with these sessions. */
    record(machineId: string, sessions: readonly SessionInfo[], at: string): void {
      if (stopped) return
      pending.set(machineId, { sessions, at })
      if (timer) return
      timer = setTimeout(() => void flush(), FLUSH_AFTER_MS)
      timer.unref()
    },

    /**
     * The machine left: its heartbeat not stored yet is dropped, and this settles once any
     * store of it already under way has ended. What is written next lands after its heartbeats.
     */
    settle(machineId: string): Promise<void> {
      pending.delete(machineId)
      return stored
    },

    /** Stores what is waiting, and takes no more heartbeats (the server is stopping). */
    stop(): Promise<void> {
      stopped = true
      return flush()
    },
  }
}

export type HeartbeatRecorder = ReturnType<typeof createHeartbeatRecorder>
