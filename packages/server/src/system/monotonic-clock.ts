/**
 * The machine's monotonic clock, which `performance.now()` counts on and which every process
 * of the machine shares (unlike the wall clock each process samples for its time origin, which
 * puts two processes' readings up to a fraction of a millisecond apart).
 *
 * @module
 */

/** `performance.now()`'s zero, in milliseconds of the machine's monotonic clock. */
const ORIGIN_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now()

/** A `performance.now()` reading as milliseconds of the machine's monotonic clock. */
export function monotonicMs(performanceNow: number): number {
  return ORIGIN_MS + performanceNow
}
