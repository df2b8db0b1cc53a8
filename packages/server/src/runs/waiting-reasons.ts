/**
 * Why each queued run waits: the refusal of every machine of its target, as the last pass saw
 * them. Answers (`GET /runs/{id}`), the queue timeout's sub-errors and the next pass read them.
 *
 * Most waits on a busy server are short (every slot taken for a moment), and writing each
 * would cost a write per run: a run's reasons are kept on its queue index row for its first
 * second and stored after that, by the next pass or by a timer, whichever comes first. A run
 * that keeps waiting for the same reasons writes nothing more.
 *
 * @module
 */
import type { Kysely } from 'kysely'

import type { Logger } from '../logging/index.ts'
import { type Database, prepareQuery, type WriteBatcher } from '../storage/index.ts'
import type { Refusal } from './placement.ts'
import type { QueueIndex } from './queue-index.ts'
import { QUEUED, type RunRow } from './run-store.ts'

/** How long a run waits before why it waits is stored (kept in the queue index until then). */
const STORE_REFUSALS_AFTER_MS = 1_000
/** How often a run that keeps waiting for the same reasons is looked up in the database. */
const CONFIRM_WAITING_MS = 1_000

export function createWaitingReasons(deps: {
  db: Kysely<Database>
  writes: WriteBatcher
  queues: QueueIndex
  now: () => number
  logger: Logger
}) {
  const { db, writes, queues, now, logger } = deps
  const refusalsOf = prepareQuery(db, (q, a: { id: string; refusals: string }) =>
    q
      .updateTable('runs')
      .set({ refusals: a.refusals })
      .where('id', '=', a.id)
      .where('status', '=', QUEUED)
      .returning('id'),
  )
  const queuedStatus = prepareQuery(db, (q, a: { id: string }) =>
    q.selectFrom('runs').select('status').where('id', '=', a.id),
  )
  /** When each run blocking its queue was last found still queued in the database. */
  const confirmedAt = new Map<string, number>()
  /**
   * Runs whose reasons are on their index row only, with that row; a timer stores them once
   * their first second is over, should no pass do it first.
   */
  const unstored = new Map<string, RunRow>()
  let storeTimer: NodeJS.Timeout | undefined
  let stopped = false

  /** Stores the reasons of runs kept in memory whose first second is over; waits for the rest. */
  function storeLater(): void {
    if (storeTimer || stopped) return
    storeTimer = setTimeout(() => {
      storeTimer = undefined
      const at = now()
      const due = [...unstored.values()].filter(
        (run) => at - Date.parse(run.requested_at) >= STORE_REFUSALS_AFTER_MS,
      )
      for (const run of due) unstored.delete(run.id)
      if (unstored.size > 0) storeLater()
      if (due.length === 0) return
      // Only runs still queued are written (the update names the status).
      writes
        .write(async (trx) => {
          for (const run of due)
            await refusalsOf.all({ id: run.id, refusals: run.refusals ?? '[]' }, trx)
        })
        .catch((error: unknown) => logger.error({ err: error }, 'storing why runs wait failed'))
    }, STORE_REFUSALS_AFTER_MS / 4)
    storeTimer.unref()
  }

  /** The run left its queue (taken, ended): nothing of it is kept or stored any more. */
  function forget(runId: string): void {
    confirmedAt.delete(runId)
    unstored.delete(runId)
  }

  return {
    forget,

    /** Why a queued run waits, as last noted: its row in the queue index may know more. */
    of: (run: RunRow): string | null => queues.known(run)?.refusals ?? run.refusals,

    /**
     * Notes why a run waits (stored once it waited a moment); false when the run turned out to
     * be no longer queued (it left the queue some other way, or was removed behind this
     * server's back) and left the index. `blocking`: the run holds up the runs behind it (no
     * extended prioritization).
     */
    async record(run: RunRow, refusals: readonly Refusal[], blocking: boolean): Promise<boolean> {
      const json = JSON.stringify(refusals)
      const at = now()
      let queued: boolean
      const toStore = json !== run.refusals || unstored.has(run.id)
      if (toStore && at - Date.parse(run.requested_at) < STORE_REFUSALS_AFTER_MS) {
        // Kept on the queue index's row, where passes, answers and the queue timeout read it.
        run.refusals = json
        unstored.set(run.id, run)
        storeLater()
        return true
      }
      if (toStore) {
        const stored = await writes.write((trx) =>
          refusalsOf.all({ id: run.id, refusals: json }, trx),
        )
        queued = stored.length > 0
        if (queued) run.refusals = json
        unstored.delete(run.id)
      } else if (blocking && at - (confirmedAt.get(run.id) ?? 0) >= CONFIRM_WAITING_MS) {
        // A run that keeps waiting for the same reasons writes nothing; when it blocks its
        // queue it is looked up now and then, so one that vanished cannot block it for long.
        queued = (await queuedStatus.first({ id: run.id }))?.status === 'Queued'
      } else return true
      if (!queued) {
        forget(run.id)
        queues.drop(run)
        return false
      }
      if (confirmedAt.size >= 100_000) confirmedAt.clear()
      confirmedAt.set(run.id, at)
      return true
    },

    stop(): void {
      stopped = true
      clearTimeout(storeTimer)
    },
  }
}

export type WaitingReasons = ReturnType<typeof createWaitingReasons>
