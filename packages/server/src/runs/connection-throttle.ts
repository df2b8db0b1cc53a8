/**
 * The per-minute run limit of each connection (`DesktopFlowsActionThrottled`), counted in
 * memory.
 *
 * A connection's last minute is read from the database on its first use (the request times of
 * its runs), then follows every admission of this server. A slot is counted and taken in one
 * step, so requests at the very same moment cannot pass the limit together, as they could
 * when each counted the stored runs before any of them was stored; and admission reads
 * nothing for it. Like the queue index, this assumes one server per database.
 *
 * @module
 */

const WINDOW_MS = 60_000
/** Connections idle for this long are forgotten (their window is empty anyway). */
const FORGET_IDLE_AFTER_MS = 2 * WINDOW_MS

/** A slot taken for one admission. */
export interface ThrottleSlot {
  /** The run was stored, requested at `atMs` (as stored, so a read of it later agrees). */
  keep(atMs: number): void
  /** The run was not stored after all: the slot is given back (nothing, once kept). */
  release(): void
}

interface Window {
  /** Request times (epoch ms) of the connection's runs, oldest first. */
  readonly times: number[]
  lastUse: number
  /** Slots taken for admissions not over yet: their runs are in no read of the database. */
  pending: number
}

interface Entry {
  readonly ready: Promise<Window>
  /** Set once `ready` settled. */
  window?: Window
}

export function createConnectionThrottle(
  /** Request times (epoch ms) of the connection's runs requested at `sinceMs` or later. */
  readRecent: (connectionId: string, sinceMs: number) => Promise<number[]>,
) {
  const entries = new Map<string, Entry>()
  let nextSweep = 0

  function windowOf(connectionId: string, nowMs: number): Promise<Window> {
    const found = entries.get(connectionId)
    if (found) return found.ready
    // Every admission through the connection waits for this read before it counts, so no run
    // of it is stored by this server while the read is under way.
    const ready = readRecent(connectionId, nowMs - WINDOW_MS).then((times) => {
      const window = { times: times.sort((a, b) => a - b), lastUse: nowMs, pending: 0 }
      entry.window = window
      return window
    })
    const entry: Entry = { ready }
    entries.set(connectionId, entry)
    ready.catch(() => {
      if (entries.get(connectionId) === entry) entries.delete(connectionId)
    })
    return ready
  }

  /** Connections unused for a while hold nothing in their window: they are forgotten. */
  function sweep(nowMs: number): void {
    if (nowMs < nextSweep) return
    nextSweep = nowMs + FORGET_IDLE_AFTER_MS
    for (const [id, { window }] of entries)
      if (window && window.pending === 0 && nowMs - window.lastUse >= FORGET_IDLE_AFTER_MS)
        entries.delete(id)
  }

  return {
    /**
     * A slot for a run requested through the connection now; when `limit` runs were requested
     * through it in the last minute, how long until one of them leaves the minute instead.
     */
    async take(
      connectionId: string,
      limit: number,
      nowMs: number,
    ): Promise<{ slot: ThrottleSlot } | { retryAfterMs: number }> {
      sweep(nowMs)
      const window = await windowOf(connectionId, nowMs)
      const { times } = window
      let expired = 0
      while (expired < times.length && times[expired] < nowMs - WINDOW_MS) expired += 1
      times.splice(0, expired)
      window.lastUse = Math.max(window.lastUse, nowMs)
      // The oldest runs that would have to leave the minute for this one to fit.
      if (times.length >= limit)
        return { retryAfterMs: times[times.length - limit] + WINDOW_MS - nowMs }
      insert(times, nowMs)
      window.pending += 1
      let open = true
      const close = () => {
        if (!open) return false
        open = false
        window.pending -= 1
        const index = times.lastIndexOf(nowMs)
        if (index >= 0) times.splice(index, 1)
        return true
      }
      return {
        slot: {
          keep(atMs) {
            if (close()) insert(times, atMs)
          },
          release() {
            close()
          },
        },
      }
    },
  }
}

/** Puts `at` into `times` in order (admissions that read the clock before waiting may come late). */
function insert(times: number[], at: number): void {
  let index = times.length
  while (index > 0 && times[index - 1] > at) index -= 1
  times.splice(index, 0, at)
}

export type ConnectionThrottle = ReturnType<typeof createConnectionThrottle>
