/**
 * Run events are kept for the environment's `queueEventsTtlMinutes` (7 days by default, the
 * reference's `desktopFlowQueueLogsTtlMinutes`, §1.13), counted from the run's request; then a
 * sweep deletes them. The run itself stays: its status, times, error and outputs.
 *
 * Run ids sort by the time they were made, so "requested before the cutoff" is a range of ids:
 * the sweep walks the event table's index on the run id from its oldest entry, a few hundred
 * runs per commit, each batch on from the last, and never reads runs whose events are gone.
 * Only runs that ended lose theirs.
 *
 * @module
 */
import type { RunSettings } from '@desklink/protocol'
import type { Kysely } from 'kysely'

import type { Logger } from '../logging/index.ts'
import type { Database, WriteBatcher } from '../storage/index.ts'
import type { Clock } from '../system/index.ts'

/** Runs whose events one commit deletes. */
const BATCH = 500

/** The smallest run id made at `ms` or later (ids are UUIDv7: the time in their first 48 bits). */
export function firstIdAt(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`
}

export function createEventRetention(deps: {
  db: Kysely<Database>
  writes: WriteBatcher
  settingsOf: (environmentId: string) => Promise<RunSettings>
  clock: Clock
  logger: Logger
  everyMs: number
}) {
  const { db, writes, logger } = deps
  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<number> | undefined

  /** Deletes the events of one environment's runs that ended and were requested before `cutoff`. */
  async function sweepEnvironment(environmentId: string, cutoff: string): Promise<number> {
    let deleted = 0
    // Each batch goes on from the last: what the walk passed over (runs of other environments,
    // kept longer; runs still going) is not read again in this sweep.
    let after = ''
    for (;;) {
      const runIds = (
        await db
          .selectFrom('run_events')
          .innerJoin('runs', 'runs.id', 'run_events.run_id')
          .select('run_events.run_id')
          .where('run_events.run_id', '<', cutoff)
          .where('run_events.run_id', '>', after)
          .where('runs.environment_id', '=', environmentId)
          .where('runs.finished_at', 'is not', null)
          .groupBy('run_events.run_id')
          .orderBy('run_events.run_id')
          .limit(BATCH)
          .execute()
      ).map((row) => row.run_id)
      if (runIds.length === 0) return deleted
      after = runIds[runIds.length - 1]
      await writes.write((trx) =>
        trx.deleteFrom('run_events').where('run_id', 'in', runIds).execute(),
      )
      deleted += runIds.length
      if (runIds.length < BATCH) return deleted
    }
  }

  async function sweep(): Promise<number> {
    const now = deps.clock.now().getTime()
    let deleted = 0
    for (const { id } of await db.selectFrom('environments').select('id').execute()) {
      const { queueEventsTtlMinutes } = await deps.settingsOf(id)
      deleted += await sweepEnvironment(id, firstIdAt(now - queueEventsTtlMinutes * 60_000))
    }
    if (deleted > 0) logger.info({ runs: deleted }, 'deleted the events of runs past retention')
    return deleted
  }

  /** One sweep at a time: a slow one is not started again over itself. */
  function sweepOnce(): Promise<number> {
    sweeping ??= sweep().finally(() => (sweeping = undefined))
    return sweeping
  }

  return {
    start(): void {
      timer = setInterval(() => {
        sweepOnce().catch((error: unknown) =>
          logger.error({ err: error }, 'deleting old run events failed'),
        )
      }, deps.everyMs)
      timer.unref()
    },
    stop(): void {
      clearInterval(timer)
    },
  }
}
