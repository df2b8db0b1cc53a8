/**
 * The callbacks runs are owed. A run with a `callbackUrl` is noted as owed in the commit that
 * ends it (`pending_callbacks`); the note goes in the commit that records the callback's
 * outcome, a `callback` event of the run. A server stopped in between, even killed, makes the
 * callbacks it still owes when it starts again: delivery is at least once, and a receiver that
 * must act once tells a repeat by the run's id.
 *
 * @module
 */
import type { Logger } from '../logging/index.ts'
import type { WriteBatcher } from '../storage/index.ts'
import type { Clock } from '../system/index.ts'
import { deliverCallback } from './callbacks.ts'
import type { RunRow, RunStore } from './run-store.ts'

/** Callbacks made at once when a server starts with many owed. */
const RESUME_AT_ONCE = 8

export function createRunCallbacks(deps: {
  store: RunStore
  writes: WriteBatcher
  /** The run as the API shows it: the callback's body. */
  body: (run: RunRow) => Promise<unknown>
  clock: Clock
  logger: Logger
  caPem?: string | undefined
  allowedHosts?: readonly string[] | undefined
}) {
  const { store, writes, clock, logger } = deps
  /** Runs whose callback is being made by this server: never made twice at once. */
  const making = new Set<string>()

  async function make(run: RunRow & { callback_url: string }): Promise<void> {
    const outcome = await deliverCallback(run.callback_url, await deps.body(run), {
      logger,
      caPem: deps.caPem,
      allowedHosts: deps.allowedHosts,
    })
    await writes.write(async (trx) => {
      const within = store.within(trx)
      await within.event(run, clock.now().toISOString(), 'callback', outcome)
      await within.paidCallback(run.id)
    })
  }

  /** Makes the run's callback, unless it has none or it is being made; never rejects. */
  async function owed(run: RunRow): Promise<void> {
    const url = run.callback_url
    if (!url || making.has(run.id)) return
    making.add(run.id)
    try {
      await make({ ...run, callback_url: url })
    } catch (error) {
      logger.error({ err: error, runId: run.id }, 'callback failed')
    } finally {
      making.delete(run.id)
    }
  }

  return {
    /** A run ended: its callback, if it has one, is made now. */
    ended(run: RunRow): void {
      void owed(run)
    },

    /**
     * At start: the callbacks owed by runs that ended before this server stopped, a few at a
     * time (a long outage may have left many). Resolves once they are all made.
     */
    async resume(): Promise<void> {
      const runs = await store.owedCallbacks()
      if (runs.length === 0) return
      logger.info({ count: runs.length }, 'making the callbacks still owed')
      const next = () => runs.shift()
      const worker = async () => {
        for (let run = next(); run; run = next()) await owed(run)
      }
      await Promise.all(Array.from({ length: Math.min(RESUME_AT_ONCE, runs.length) }, worker))
    },
  }
}

export type RunCallbacks = ReturnType<typeof createRunCallbacks>
