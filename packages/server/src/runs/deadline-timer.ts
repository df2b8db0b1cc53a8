/**
 * One timer for every deadline of the runs (queue deadlines, leases, run timeouts): set for the
 * earliest one stored, and set again only when an earlier one is announced. A timer that fires
 * early (its run ended or was renewed meanwhile) finds nothing due and is set for what is next.
 *
 * @module
 */
import type { Logger } from '../logging/index.ts'

export function createDeadlineTimer(deps: {
  /** The earliest deadline stored (epoch ms), or undefined when none. */
  nextDeadline: () => Promise<number | undefined>
  /** Handles whatever is due now. */
  onDue: () => Promise<void>
  now: () => number
  logger: Logger
}) {
  let timer: NodeJS.Timeout | undefined
  /** When the timer fires; undefined when it is not set. */
  let armedFor: number | undefined
  /** The earliest deadline announced since the last arming read the database. */
  let announcedSinceArm = Infinity
  let armScheduled = false
  let stopped = false

  function scheduleArm() {
    if (armScheduled || stopped) return
    armScheduled = true
    setImmediate(() => {
      armScheduled = false
      arm().catch((error: unknown) => {
        deps.logger.error({ err: error }, 'arming the deadline timer failed; trying again')
        setTimeout(scheduleArm, 1000).unref()
      })
    })
  }

  async function arm(): Promise<void> {
    announcedSinceArm = Infinity
    const stored = await deps.nextDeadline()
    // A deadline announced while the read ran may have been stored just after it.
    const next = Math.min(stored ?? Infinity, announcedSinceArm)
    clearTimeout(timer)
    timer = undefined
    armedFor = undefined
    if (!Number.isFinite(next) || stopped) return
    armedFor = next
    const delay = Math.min(Math.max(0, next - deps.now()), 2 ** 31 - 1)
    timer = setTimeout(() => {
      armedFor = undefined
      void deps
        .onDue()
        .catch((error: unknown) => deps.logger.error({ err: error }, 'deadline handling failed'))
        .finally(() => scheduleArm())
    }, delay + 10)
    timer.unref()
  }

  return {
    /** A deadline was just stored: only one earlier than the timer sets it again. */
    dueAt(ms: number): void {
      announcedSinceArm = Math.min(announcedSinceArm, ms)
      if (armedFor === undefined || ms < armedFor) scheduleArm()
    },
    /** Reads the earliest stored deadline and sets the timer for it (at start). */
    start(): void {
      scheduleArm()
    },
    stop(): void {
      stopped = true
      clearTimeout(timer)
    },
  }
}
