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

/** A slot taken for one admission; given back when the run is not stored after all. */
export interface ThrottleSlot {
  release(): void
}

interface Window {
  /** Request times (epoch ms) of the connection's runs, oldest first. */
  readonly times: number[]
  lastUse: number
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
      const window = { times: times.sort((a, b) => a - b), lastUse: nowMs }
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
      if (window && nowMs - window.lastUse >= FORGET_IDLE_AFTER_MS) entries.delete(id)
  }

  return {
    /**
     * A slot for a run requested through the connection now, or undefined when `limit` runs
     * were requested through it in the last minute.
     */
    async take(
      connectionId: string,
      limit: number,
      nowMs: number,
    ): Promise<ThrottleSlot | undefined> {
      sweep(nowMs)
      const window = await windowOf(connectionId, nowMs)
      const { times } = window
      let expired = 0
      while (expired < times.length && times[expired] < nowMs - WINDOW_MS) expired += 1
      times.splice(0, expired)
      window.lastUse = Math.max(window.lastUse, nowMs)
      if (times.length >= limit) return undefined
      // In order, though admissions that read the clock before waiting may come out of order.
      let at = times.length
      while (at > 0 && times[at - 1] > nowMs) at -= 1
      times.splice(at, 0, nowMs)
      let held = true
      return {
        release() {
          if (!held) return
          held = false
          const index = times.lastIndexOf(nowMs)
          if (index >= 0) times.splice(index, 1)
        },
      }
    },
  }
}

export type ConnectionThrottle = ReturnType<typeof createConnectionThrottle>
