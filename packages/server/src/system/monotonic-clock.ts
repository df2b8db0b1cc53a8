/**
 * The machine's monotonic clock, which `performance.now()` counts on and which every process
 * of the machine shares (unlike the wall clock each process samples for its time origin, which
 * puts two processes' readings up to a fraction of a millisecond apart).
 *
 * @module
 */

const nowMonotonicMs = () => Number(process.hrtime.bigint()) / 1e6

/**
 * `performance.now()`'s zero in milliseconds of the monotonic clock: a `performance.now()`
 * reading between two readings of the monotonic clock, from the closest of a few such pairs
 * (a pair the process was paused within, as virtual machines are now and then, would put
 * every later conversion off by that pause).
 */
function measureOrigin(): number {
  let best = { gap: Infinity, origin: 0 }
  for (let i = 0; i < 20; i++) {
    const before = nowMonotonicMs()
    const now = performance.now()
    const after = nowMonotonicMs()
    if (after - before < best.gap)
      best = { gap: after - before, origin: (before + after) / 2 - now }
  }
  return best.origin
}

const ORIGIN_MS = measureOrigin()

/** A `performance.now()` reading as milliseconds of the machine's monotonic clock. */
export function monotonicMs(performanceNow: number): number {
  return ORIGIN_MS + performanceNow
}
