/**
 * Why a queued run waits, as an answer (`GET /runs/{id}`) and a queue timeout's sub-errors
 * give it: from what the last pass over its queue noted, or, for a run no pass looked at (it is
 * behind the run holding its queue up), each machine's verdict now.
 *
 * @module
 */
import type { MachinePictures } from './machine-pictures.ts'
import { type Refusal, refusalsBehind, waitsOnlyForSession } from './placement.ts'
import { type QueueIndex, WHOLE_QUEUE } from './queue-index.ts'
import type { ConnectionForRun } from './run-facts.ts'
import type { RunRow } from './run-store.ts'
import type { TargetMembers } from './target-members.ts'

export function createWaitExplainer(deps: {
  queues: QueueIndex
  machines: MachinePictures
  targetMembers: TargetMembers
  connectionOf: (id: string) => Promise<ConnectionForRun | undefined>
  /** The machines that turned each run down, with why, until their next heartbeat. */
  rejectedBy: ReadonlyMap<string, ReadonlyMap<string, Refusal>>
  /** What the last pass noted of a run (JSON of its refusals), if anything. */
  whyWaiting: (run: RunRow) => string | null
}) {
  const { queues, machines, targetMembers, connectionOf, rejectedBy, whyWaiting } = deps

  /**
   * Why a queued run waits, machine by machine. The head of its queue: as the last pass noted.
   * A run behind the run that holds up its queue, which no pass looks at (what it noted when a
   * pass last reached it is stale by then): each machine's verdict now, where a machine that
   * could take it says that run goes first (`blockedBy`). Without extended prioritization the
   * head holds up the queue; with it, the first run that waits for more than its user's session
   * (a pass moves past the others), and a run with none such ahead of it stands as last noted.
   */
  async function reasonsOf(
    run: RunRow,
  ): Promise<{ machines: Refusal[]; blockedBy: string | null }> {
    const noted = JSON.parse(whyWaiting(run) ?? '[]') as Refusal[]
    const head = (await queues.head(run.target_group_id, 1))[0] as RunRow | undefined
    const isHead = !head || head.id === run.id
    if (isHead && noted.length > 0) return { machines: noted, blockedBy: null }
    const connection = await connectionOf(run.connection_id)
    if (!connection) return { machines: noted, blockedBy: null }
    const pictures = await machines.of(await targetMembers.of(run.target_group_id))
    const extended = pictures.some((p) => p.settings.extendedQueuePrioritization)
    const ahead = isHead ? undefined : extended ? await holdingUp(run) : head
    if (!ahead && noted.length > 0) return { machines: noted, blockedBy: null }
    const refused = rejectedBy.get(run.id)
    const verdicts = refusalsBehind(
      pictures,
      { runMode: run.run_mode, osUser: connection.os_account },
      ahead,
    ).map((verdict) => refused?.get(verdict.machineId) ?? verdict)
    return { machines: verdicts, blockedBy: ahead?.id ?? null }
  }

  /**
   * With extended prioritization, the first run ahead of `run` in its queue that a pass stops
   * at: it was last found waiting for more than its user's session.
   */
  async function holdingUp(run: RunRow): Promise<RunRow | undefined> {
    for (const ahead of await queues.head(run.target_group_id, WHOLE_QUEUE)) {
      if (ahead.id === run.id) return undefined
      if (holdsUp(whyWaiting(ahead), ahead.run_mode)) return ahead
    }
    return undefined
  }

  /**
   * Whether a run that waits for these reasons holds up the runs behind it. Kept by reasons:
   * the runs of a queue mostly wait for the same ones, and explaining every run of a long queue
   * would otherwise read each run's reasons once per run behind it.
   */
  const held = new Map<string, boolean>()
  function holdsUp(refusals: string | null, runMode: RunRow['run_mode']): boolean {
    if (refusals === null) return false
    const key = `${runMode} ${refusals}`
    let holds = held.get(key)
    if (holds === undefined) {
      const noted = JSON.parse(refusals) as Refusal[]
      holds = noted.length > 0 && !waitsOnlyForSession(noted, runMode)
      if (held.size >= 1_000) held.clear()
      held.set(key, holds)
    }
    return holds
  }

  return { reasonsOf }
}
