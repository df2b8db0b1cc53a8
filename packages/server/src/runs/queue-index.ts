/**
 * The queued runs of each target, in queue order, kept in memory: a placement pass, a run's
 * position and the queue-full limit read the queue from here instead of the database.
 *
 * The database stays the source of truth. A target's queue is read once, the first time it is
 * needed (after a start, that is from the database as it is), and then follows every change
 * the dispatcher and the run service make: a run queued, taken, ended, given back or reordered.
 * Changes made while the first read runs are replayed on top of it. Nothing here can start a
 * run twice: taking a run is still one conditional update, and a run the index holds but the
 * database no longer has queued simply fails to be taken and leaves the index.
 *
 * @module
 */
import type { RunRow } from './run-store.ts'

/** Before `b` in queue order: moved to top (latest first), then priority, then time, then id. */
export function queuedBefore(a: RunRow, b: RunRow): boolean {
  if (a.queue_rank !== b.queue_rank) return a.queue_rank < b.queue_rank
  if (a.priority_rank !== b.priority_rank) return a.priority_rank < b.priority_rank
  if (a.requested_at !== b.requested_at) return a.requested_at < b.requested_at
  return a.id < b.id
}

type Change =
  { kind: 'put'; run: RunRow } | { kind: 'reorder'; run: RunRow } | { kind: 'drop'; runId: string }

interface GroupQueue {
  /** In queue order. */
  runs: RunRow[]
  /** The same runs by id: a run's place is found by its key, not by a walk. */
  byId: Map<string, RunRow>
  /** Set while the first read runs: changes made meanwhile, replayed once it is back. */
  replay?: Change[]
  loaded: Promise<void>
}

/** A place in a queue held for a run being admitted. */
export interface PromisedPlace {
  release(): void
}

/** A limit that reads a whole queue (queues are bounded far below it by `maxQueuedRuns`). */
export const WHOLE_QUEUE = 1_000_000

export function createQueueIndex(readQueue: (groupId: string) => Promise<RunRow[]>) {
  const groups = new Map<string, GroupQueue>()
  /** Places in each target's queue promised to admissions that have not queued their run. */
  const promised = new Map<string, number>()

  /** How many runs of the queue come before `run` (its index, when it is in the queue). */
  function placeOf(queue: GroupQueue, run: RunRow): number {
    let low = 0
    let high = queue.runs.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (queuedBefore(queue.runs[mid], run)) low = mid + 1
      else high = mid
    }
    return low
  }

  function apply(queue: GroupQueue, change: Change) {
    const id = change.kind === 'drop' ? change.runId : change.run.id
    const present = queue.byId.get(id)
    if (present) {
      const at = placeOf(queue, present)
      // Found by its key; should the order ever disagree, by a walk rather than remove another.
      queue.runs.splice(queue.runs[at] === present ? at : queue.runs.indexOf(present), 1)
      queue.byId.delete(id)
    }
    // A reorder only moves a run the queue still holds: one taken or ended meanwhile stays out.
    if (change.kind === 'drop' || (change.kind === 'reorder' && !present)) return
    const { run } = change
    queue.runs.splice(placeOf(queue, run), 0, run)
    queue.byId.set(id, run)
  }

  function change(groupId: string, what: Change) {
    const queue = groups.get(groupId)
    if (!queue) return // Not read yet: the first read will see it in the database.
    if (queue.replay) queue.replay.push(what)
    else apply(queue, what)
  }

  /** The target's queue, read from the database the first time. */
  async function queueOf(groupId: string): Promise<GroupQueue> {
    let queue = groups.get(groupId)
    if (!queue) {
      const fresh: GroupQueue = {
        runs: [],
        byId: new Map(),
        replay: [],
        loaded: Promise.resolve(),
      }
      fresh.loaded = readQueue(groupId).then(
        (rows) => {
          fresh.runs = rows
          fresh.byId = new Map(rows.map((r) => [r.id, r]))
          for (const c of fresh.replay ?? []) apply(fresh, c)
          delete fresh.replay
        },
        (error: unknown) => {
          // Read again on the next use.
          if (groups.get(groupId) === fresh) groups.delete(groupId)
          throw error
        },
      )
      groups.set(groupId, fresh)
      queue = fresh
    }
    await queue.loaded
    return queue
  }

  return {
    /** The first `limit` queued runs of a target, in queue order. */
    async head(groupId: string, limit: number): Promise<RunRow[]> {
      return (await queueOf(groupId)).runs.slice(0, limit)
    },

    /**
     * A place in a target's queue for a run being admitted, or undefined when the queue, with
     * the places already promised, is full. Counted and promised in one step, so admissions at
     * once cannot overfill it. Release the place once the run is `put` (it then counts as
     * queued), or when admission gives up.
     */
    async promisePlace(groupId: string, max: number): Promise<PromisedPlace | undefined> {
      const queue = await queueOf(groupId)
      const others = promised.get(groupId) ?? 0
      if (queue.runs.length + others >= max) return undefined
      promised.set(groupId, others + 1)
      let held = true
      return {
        release() {
          if (!held) return
          held = false
          const left = (promised.get(groupId) ?? 1) - 1
          if (left > 0) promised.set(groupId, left)
          else promised.delete(groupId)
        },
      }
    },

    /**
     * Whether a run being admitted to the target, holding one promised place, would be alone in
     * its queue: no run is queued there, and no other admission holds a place.
     */
    async alone(groupId: string): Promise<boolean> {
      const queue = await queueOf(groupId)
      return queue.runs.length === 0 && (promised.get(groupId) ?? 0) <= 1
    },

    /** Where a queued run stands (1 for the head), or undefined when it is not queued. */
    async positionOf(run: Pick<RunRow, 'id' | 'target_group_id'>): Promise<number | undefined> {
      const queue = await queueOf(run.target_group_id)
      const present = queue.byId.get(run.id)
      return present && placeOf(queue, present) + 1
    },

    /** The run as the index holds it, when its queue is read and holds it. */
    known(run: Pick<RunRow, 'id' | 'target_group_id'>): RunRow | undefined {
      const queue = groups.get(run.target_group_id)
      return queue && !queue.replay ? queue.byId.get(run.id) : undefined
    },

    /** A run joined its queue, came back to it, or changed its place in it. */
    put(run: RunRow): void {
      change(run.target_group_id, { kind: 'put', run })
    },

    /** A queued run changed its place (priority, moved to top or back), unless it left. */
    reorder(run: RunRow): void {
      change(run.target_group_id, { kind: 'reorder', run })
    },

    /** A run left its queue (taken by a machine, ended, or found gone). */
    drop(run: Pick<RunRow, 'id' | 'target_group_id'>): void {
      change(run.target_group_id, { kind: 'drop', runId: run.id })
    },

    /** Forgets a target's queue: it is read again on its next use. */
    forget(groupId: string): void {
      groups.delete(groupId)
    },
  }
}

export type QueueIndex = ReturnType<typeof createQueueIndex>
