/**
 * What the dispatcher keeps in memory agrees with the database (SQLite and PostgreSQL): the
 * queue index gives the same order and places as the run store after any mix of runs queued,
 * reordered, taken and given back, including changes made while it first reads a queue; the
 * machine holdings are read again after a change that overlapped their read; the connection
 * throttle counts what the database holds, then each admission, and no more than its limit.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createConnectionThrottle } from '../../packages/server/src/runs/connection-throttle.ts'
import { createMachineHoldings } from '../../packages/server/src/runs/machine-holdings.ts'
import { createQueueIndex } from '../../packages/server/src/runs/queue-index.ts'
import {
  createRunStore,
  queueRankOf,
  type RunRow,
  type RunStore,
} from '../../packages/server/src/runs/run-store.ts'
import type { StorageHandle } from '../../packages/server/src/storage/index.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS } from '../support/backends.ts'
import { at, openRunDatabase, queuedRunRow } from '../support/run-rows.ts'

const WHOLE = 1_000_000

describe.each(BACKENDS)('dispatcher memory on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openRunDatabase>>
  let storage: StorageHandle
  let store: RunStore
  const tenantId = uuidv7()

  const queuedRun = (group: string, offsetMs: number, priority: 0 | 1 | 2): RunRow =>
    queuedRunRow(tenantId, group, offsetMs, {
      priority: (['high', 'normal', 'low'] as const)[priority],
      priority_rank: priority,
    })

  beforeAll(async () => {
    opened = await openRunDatabase(backend, tenantId)
    storage = opened.storage
    store = createRunStore(storage.db, uuidv7)
  })
  afterAll(async () => {
    await opened?.close()
  })

  const ids = (runs: readonly RunRow[]) => runs.map((r) => r.id)

  type Step =
    | { kind: 'queue'; offsetMs: number; priority: 0 | 1 | 2 }
    | { kind: 'moveToTop' | 'undoMove' | 'take' | 'giveBack'; pick: number }
    | { kind: 'priority'; pick: number; priority: 0 | 1 | 2 }
  const priority = fc.constantFrom<0 | 1 | 2>(0, 1, 2)
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('queue' as const),
      // Few distinct times, so ties fall to priority and then to the id.
      offsetMs: fc.integer({ min: 0, max: 5 }).map((n) => n * 1000),
      priority,
    }),
    fc.record({
      kind: fc.constantFrom('moveToTop' as const, 'undoMove' as const, 'take' as const),
      pick: fc.nat(),
    }),
    fc.record({ kind: fc.constant('giveBack' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('priority' as const), pick: fc.nat(), priority }),
  )

  it('keeps the order and places the store gives, whatever happens to the queue', async () => {
    let clock = 0
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const group = uuidv7()
        const index = createQueueIndex((g) => store.queueHead(g, WHOLE))
        const taken: RunRow[] = []
        // Read once before the steps (empty), so the index then follows every change.
        expect(await index.head(group, WHOLE)).toEqual([])
        for (const s of steps) {
          const queued = await store.queueHead(group, WHOLE)
          const chosen =
            queued.length > 0 ? queued[('pick' in s ? s.pick : 0) % queued.length] : undefined
          if (s.kind === 'queue') {
            const run = queuedRun(group, s.offsetMs, s.priority)
            await store.insert(run)
            index.put(run)
          } else if (s.kind === 'giveBack') {
            const run = taken.length > 0 ? taken.splice(s.pick % taken.length, 1)[0] : undefined
            const back =
              run &&
              (await store.transition(run.id, 'Running', { status: 'Queued', machine_id: null }))
            if (back) index.put(back)
          } else if (chosen && s.kind === 'take') {
            const row = await store.transition(chosen.id, 'Queued', {
              status: 'Running',
              machine_id: uuidv7(),
            })
            if (row) taken.push(row)
            index.drop(chosen)
          } else if (chosen) {
            clock += 1000
            const changes: Partial<RunRow> =
              s.kind === 'priority'
                ? { priority_rank: s.priority }
                : s.kind === 'moveToTop'
                  ? {
                      moved_to_top_at: at(10_000 + clock),
                      queue_rank: queueRankOf(at(10_000 + clock)),
                    }
                  : { moved_to_top_at: null, queue_rank: 0 }
            const row = await store.transition(chosen.id, 'Queued', changes)
            if (row) index.reorder(row)
          }
        }
        const expected = await store.queueHead(group, WHOLE)
        expect(ids(await index.head(group, WHOLE))).toEqual(ids(expected))
        expect((await index.head(group, WHOLE)).length).toBe(expected.length)
        for (const run of expected)
          expect(await index.positionOf(run)).toBe(await store.positionOf(run))
        for (const run of taken) expect(await index.positionOf(run)).toBeUndefined()
      }),
      { numRuns: backend === 'sqlite' ? 40 : 15 },
    )
  })

  it('replays the changes made while it first reads a queue', async () => {
    const group = uuidv7()
    const stays = queuedRun(group, 0, 1)
    const leaves = queuedRun(group, 1000, 1)
    for (const run of [stays, leaves]) await store.insert(run)
    // The first read answers with the queue as it was before the changes below: the changes
    // start once it has read, and it answers once they are made.
    let release = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    let haveRead = () => {}
    const read = new Promise<void>((resolve) => (haveRead = resolve))
    const index = createQueueIndex(async (g) => {
      const rows = await store.queueHead(g, WHOLE)
      haveRead()
      await held
      return rows
    })
    const reading = index.head(group, WHOLE)
    await read

    // Meanwhile: one run is taken, one joins, one is moved to the top.
    const joins = queuedRun(group, 2000, 0)
    await store.insert(joins)
    index.put(joins)
    await store.transition(leaves.id, 'Queued', { status: 'Running' })
    index.drop(leaves)
    const moved = await store.transition(stays.id, 'Queued', {
      moved_to_top_at: at(60_000),
      queue_rank: queueRankOf(at(60_000)),
    })
    if (moved) index.reorder(moved)
    release()

    expect(ids(await reading)).toEqual([stays.id, joins.id])
    expect(ids(await store.queueHead(group, WHOLE))).toEqual([stays.id, joins.id])
  })

  it('does not bring back a run that left its queue when a late reorder comes', async () => {
    const group = uuidv7()
    const run = queuedRun(group, 0, 1)
    await store.insert(run)
    const index = createQueueIndex((g) => store.queueHead(g, WHOLE))
    expect(ids(await index.head(group, WHOLE))).toEqual([run.id])
    // Cancelled (or taken) while its priority change was being stored.
    index.drop(run)
    index.reorder({ ...run, priority: 'high', priority_rank: 0 })
    expect(await index.head(group, WHOLE)).toEqual([])
    expect(await index.head(group, WHOLE)).toHaveLength(0)
  })

  it('promises no more places in a queue than it has, to admissions at once', async () => {
    const group = uuidv7()
    const waiting = queuedRun(group, 0, 1)
    await store.insert(waiting)
    const index = createQueueIndex((g) => store.queueHead(g, WHOLE))

    // Eight admissions at once for a queue of three that holds one run: two get a place.
    const places = await Promise.all(Array.from({ length: 8 }, () => index.promisePlace(group, 3)))
    const granted = places.filter((p) => p !== undefined)
    expect(granted).toHaveLength(2)

    // One of them queues its run: the run now counts instead of the promise.
    const joined = queuedRun(group, 1000, 1)
    await store.insert(joined)
    index.put(joined)
    granted[0]?.release()
    granted[0]?.release() // Releasing twice frees one place only.
    expect(await index.promisePlace(group, 3)).toBeUndefined()

    // The other gives up: its place is free again.
    granted[1]?.release()
    const again = await index.promisePlace(group, 3)
    expect(again).toBeDefined()
    again?.release()
  })

  it('tells an admission it would be alone only when nothing is queued or being admitted', async () => {
    const group = uuidv7()
    const index = createQueueIndex((g) => store.queueHead(g, WHOLE))
    const mine = await index.promisePlace(group, 10)
    expect(await index.alone(group)).toBe(true)

    // Another admission holds a place: its run may come first.
    const other = await index.promisePlace(group, 10)
    expect(await index.alone(group)).toBe(false)
    other?.release()
    expect(await index.alone(group)).toBe(true)

    // A run waits in the queue.
    const waiting = queuedRun(group, 0, 1)
    await store.insert(waiting)
    index.put(waiting)
    expect(await index.alone(group)).toBe(false)
    index.drop(waiting)
    expect(await index.alone(group)).toBe(true)
    mine?.release()
  })

  it('reads a machine’s holdings again when a change overlapped their read', async () => {
    const machine = uuidv7()
    const group = uuidv7()
    const first = { ...queuedRun(group, 0, 1), status: 'Running' as const, machine_id: machine }
    const second = { ...queuedRun(group, 1, 1), status: 'Running' as const, machine_id: machine }
    for (const run of [first, second]) await store.insert(run)
    let reads = 0
    const holdings = createMachineHoldings((machineIds) => {
      reads += 1
      return store.heldBy(machineIds)
    })

    // The first run ends while the holdings are read: the read started before its end was
    // stored, so it still lists it.
    const reading = holdings.of([machine])
    holdings.remove(machine, first.id)
    expect(((await reading).get(machine) ?? []).map((r) => r.id).sort()).toEqual(
      [first.id, second.id].sort(),
    )
    await store.transition(first.id, 'Running', { status: 'Succeeded' })
    expect(reads).toBe(1)

    // Not kept: read again, and now right.
    expect(ids([...((await holdings.of([machine])).get(machine) ?? [])] as RunRow[])).toEqual([
      second.id,
    ])
    expect(reads).toBe(2)
    // Kept from then on, and followed: a run taken is added, one that ends is removed.
    const third = { ...queuedRun(group, 2, 1), status: 'Running' as const, machine_id: machine }
    await store.insert(third)
    holdings.add(third)
    holdings.remove(machine, second.id)
    expect(ids([...((await holdings.of([machine])).get(machine) ?? [])] as RunRow[])).toEqual([
      third.id,
    ])
    expect(reads).toBe(2)
    // A heartbeat listing other runs than those kept makes the dispatcher forget them: the next
    // pass reads what the database says. One listing the same runs changes nothing.
    expect(holdings.agrees(machine, [third.id])).toBe(true)
    expect(holdings.agrees(machine, [])).toBe(false)
    expect(holdings.agrees(machine, [second.id, third.id])).toBe(false)
    holdings.forget(machine)
    expect(holdings.agrees(machine, [second.id, third.id])).toBe(false)
    expect(((await holdings.of([machine])).get(machine) ?? []).map((r) => r.id).sort()).toEqual(
      [second.id, third.id].sort(),
    )
    expect(reads).toBe(3)
    expect(holdings.agrees(machine, [third.id, second.id])).toBe(true)
  })
  describe('the connection throttle', () => {
    const MINUTE = 60_000
    const throttleOver = () => {
      let reads = 0
      const throttle = createConnectionThrottle(async (connectionId, sinceMs) => {
        reads += 1
        const times = await store.requestTimes(connectionId, new Date(sinceMs).toISOString())
        return times.map(Date.parse)
      })
      return { throttle, reads: () => reads }
    }
    const storedRun = async (connectionId: string, offsetMs: number) =>
      store.insert(queuedRunRow(tenantId, uuidv7(), offsetMs, { connection_id: connectionId }))

    it('counts the runs stored in the last minute before it first looked, then reads no more', async () => {
      const connection = uuidv7()
      const now = Date.parse(at(10 * MINUTE))
      await storedRun(connection, 10 * MINUTE - 2 * MINUTE) // too old to count
      await storedRun(connection, 10 * MINUTE - 30_000)
      await storedRun(connection, 10 * MINUTE - 1_000)
      const { throttle, reads } = throttleOver()
      expect(await throttle.take(connection, 3, now)).toHaveProperty('slot')
      // Full until the older of the two stored runs leaves the window, 30 s after `now`.
      expect(await throttle.take(connection, 3, now + 10)).toEqual({ retryAfterMs: 29_990 })
      expect(reads()).toBe(1)
      expect(await throttle.take(connection, 3, now + 30_001)).toHaveProperty('slot')
      expect(await throttle.take(connection, 3, now + 30_002)).toHaveProperty('retryAfterMs')
      expect(reads()).toBe(1)
    })

    it('gives no more slots than the limit to admissions at once', async () => {
      const connection = uuidv7()
      const now = Date.parse(at(20 * MINUTE))
      const { throttle } = throttleOver()
      const slots = await Promise.all(
        Array.from({ length: 8 }, (_, i) => throttle.take(connection, 3, now + i)),
      )
      expect(slots.filter((s) => 'slot' in s)).toHaveLength(3)
    })

    it('takes a slot back when the run was not stored after all', async () => {
      const connection = uuidv7()
      const now = Date.parse(at(30 * MINUTE))
      const { throttle } = throttleOver()
      const slotOf = async (atMs: number) => {
        const taken = await throttle.take(connection, 2, atMs)
        return 'slot' in taken ? taken.slot : undefined
      }
      const first = await slotOf(now)
      const second = await slotOf(now + 1)
      expect(second).toBeDefined()
      expect(await slotOf(now + 2)).toBeUndefined()
      second?.release()
      second?.release() // twice gives back one slot, not two
      expect(await slotOf(now + 3)).toBeDefined()
      expect(await slotOf(now + 4)).toBeUndefined()
      expect(first).toBeDefined()
    })

    it('counts a run from the request time it was stored with, and says when to try again', async () => {
      const connection = uuidv7()
      const now = Date.parse(at(40 * MINUTE))
      const { throttle } = throttleOver()
      // Admission took 30 s (a slow sign-in token, say): the run was stored requested then.
      const taken = await throttle.take(connection, 1, now)
      if ('slot' in taken) taken.slot.keep(now + 30_000)
      // Refused until that run is a minute old: in 29,999 ms.
      expect(await throttle.take(connection, 1, now + MINUTE + 1)).toEqual({ retryAfterMs: 29_999 })
      expect(await throttle.take(connection, 1, now + 30_000 + MINUTE + 1)).toHaveProperty('slot')
    })
  })
})
