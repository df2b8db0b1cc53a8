/**
 * What a write of the dispatcher stored after all, when its commit failed.
 *
 * A commit whose answer is lost (the connection to PostgreSQL dropped after the commit was
 * sent) may have happened. The write batcher does not try such a write again (it may be stored
 * already); each caller reads back what it wrote and says what "stored" means for it. A take
 * that cannot be read back at once, the database being out of reach, is read again every
 * second until it can be: a run it stored taken was never offered, and goes back to its queue.
 *
 * @module
 */
import type { Logger } from '../logging/index.ts'
import type { MachinePicture } from './placement.ts'
import type { RunRow, RunStore } from './run-store.ts'

/** How often a take whose outcome is not known yet is read again, while it cannot be read. */
const READ_BACK_AGAIN_MS = 1_000
/** How long such a take is read again at most. */
const SETTLE_FOR_MS = 10 * 60_000

/** A run a take put on a machine. */
export interface TakenRun {
  readonly run: RunRow
  readonly machine: Pick<MachinePicture, 'machineId'>
}

export function createFailedCommits(deps: {
  readonly store: Pick<RunStore, 'byId'>
  readonly logger: Logger
  /** Milliseconds since the epoch, on the dispatcher's clock. */
  readonly now: () => number
  readonly leaseMs: number
  /** Asks the dispatcher's deadline timer to look at running runs at `ms`. */
  readonly dueAt: (ms: number) => void
  /**
   * Gives a run taken but never offered back to its queue, only while it is still that take
   * and unstarted, and looks at the queue again.
   */
  readonly giveBack: (row: RunRow, machineId: string) => Promise<void>
}) {
  const { store, logger } = deps
  const iso = (ms: number) => new Date(ms).toISOString()
  /** Timers of takes read again later, cleared on `stop`. */
  const settling = new Set<NodeJS.Timeout>()
  let stopped = false

  /** Whether `row` is the run as the take at `at` put it on `machineId`. */
  const takenBy = (row: RunRow | undefined, machineId: string, at: number): row is RunRow =>
    row?.status === 'Running' && row.machine_id === machineId && row.offered_at === iso(at)

  /**
   * A take whose read-back failed is read again every second, for some minutes at most; should
   * the database stay away longer, the run's lease ends it (`RunLeaseExpired`), as before.
   */
  function settleLater(planned: readonly TakenRun[], at: number): void {
    deps.dueAt(at + deps.leaseMs)
    const attempt = async () => {
      let current: (RunRow | undefined)[]
      try {
        current = await Promise.all(planned.map((p) => store.byId(p.run.id)))
      } catch {
        return later()
      }
      let unsettled = false
      for (const [i, { machine }] of planned.entries()) {
        const row = current[i]
        if (stopped || !takenBy(row, machine.machineId, at)) continue
        try {
          await deps.giveBack(row, machine.machineId)
        } catch {
          unsettled = true
        }
      }
      if (unsettled) later()
    }
    const later = () => {
      if (stopped) return
      if (deps.now() - at > SETTLE_FOR_MS) {
        logger.error({ at: iso(at) }, 'a take whose commit failed could not be read back')
        return
      }
      const timer = setTimeout(() => {
        settling.delete(timer)
        void attempt()
      }, READ_BACK_AGAIN_MS).unref()
      settling.add(timer)
    }
    later()
  }

  /**
   * The run as a write whose commit failed left it, when `stored` says the write happened after
   * all; otherwise, or when it cannot be read, `error` is thrown.
   */
  async function readBack(
    runId: string,
    error: unknown,
    stored: (row: RunRow) => boolean,
  ): Promise<RunRow> {
    const row = await store.byId(runId).catch(() => undefined)
    if (!row || !stored(row)) throw error
    logger.warn({ err: error, runId }, 'a write failed to commit, yet was stored')
    return row
  }

  /**
   * What a take at `at` stored after all: each run's row when it was stored taken (it is then
   * offered like any other), and the runs still queued. Throws `error` when the take stored
   * nothing, or when nothing can be read (then it is read again later).
   */
  async function takenAfterAll(planned: readonly TakenRun[], at: number, error: unknown) {
    const current = await Promise.all(planned.map((p) => store.byId(p.run.id))).catch(() => {
      settleLater(planned, at)
      throw error
    })
    const rows = current.map((row, i) =>
      takenBy(row, planned[i].machine.machineId, at) ? row : undefined,
    )
    if (rows.every((row) => row === undefined)) throw error
    logger.warn({ err: error }, 'a take failed to commit, yet was stored: its offers go out')
    const stillQueued = new Set(
      current.flatMap((row) => (row?.status === 'Queued' ? [row.id] : [])),
    )
    return { rows, stillQueued }
  }

  function stop(): void {
    stopped = true
    for (const timer of settling) clearTimeout(timer)
    settling.clear()
  }

  return { readBack, takenAfterAll, stop }
}
