/**
 * The run store on real databases (SQLite and PostgreSQL): the queue order as one index walk,
 * a run's place counted in it, conditional transitions recorded with their event (one that
 * gives an offer back holds only for that offer, unstarted), what machines hold, and the next
 * deadline. The dispatcher's decisions rest on these answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

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

describe.each(BACKENDS)('the run store on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openRunDatabase>>
  let storage: StorageHandle
  let store: RunStore
  const tenantId = uuidv7()

  /** A queued run of `group`, requested `offsetMs` after the epoch of this suite. */
  const queuedRun = (group: string, offsetMs: number, changes: Partial<RunRow> = {}) =>
    queuedRunRow(tenantId, group, offsetMs, changes)
  const moveToTop = (run: RunRow, movedAt: string) =>
    store.transition(run.id, 'Queued', {
      moved_to_top_at: movedAt,
      queue_rank: queueRankOf(movedAt),
    })

  beforeAll(async () => {
    opened = await openRunDatabase(backend, tenantId)
    storage = opened.storage
    store = createRunStore(storage.db, uuidv7)
  })
  afterAll(async () => {
    await opened?.close()
  })

  it('walks a queue in order: moved to top (latest first), then priority, then request time', async () => {
    const group = uuidv7()
    const oldNormal = queuedRun(group, 0)
    const low = queuedRun(group, 1_000, { priority: 'low', priority_rank: 2 })
    const high = queuedRun(group, 2_000, { priority: 'high', priority_rank: 0 })
    const newNormal = queuedRun(group, 3_000)
    const movedFirst = queuedRun(group, 4_000, { priority: 'low', priority_rank: 2 })
    const movedLater = queuedRun(group, 5_000)
    const elsewhere = queuedRun(uuidv7(), -1_000, { priority: 'high', priority_rank: 0 })
    const running = queuedRun(group, -2_000, { status: 'Running' })
    for (const run of [oldNormal, low, high, newNormal, movedFirst, movedLater, elsewhere, running])
      await store.insert(run)
    await moveToTop(movedFirst, at(10_000))
    await moveToTop(movedLater, at(20_000))

    const order = [movedLater, movedFirst, high, oldNormal, newNormal, low].map((r) => r.id)
    expect((await store.queueHead(group, 100)).map((r) => r.id)).toEqual(order)
    expect((await store.queueHead(group, 2)).map((r) => r.id)).toEqual(order.slice(0, 2))
    for (const [index, id] of order.entries()) {
      const run = await store.byId(id)
      expect(run && (await store.positionOf(run))).toBe(index + 1)
    }

    // Undoing a move puts the run back in its place by priority and time.
    await store.transition(movedLater.id, 'Queued', { moved_to_top_at: null, queue_rank: 0 })
    expect((await store.queueHead(group, 100)).map((r) => r.id)).toEqual([
      movedFirst.id,
      high.id,
      oldNormal.id,
      newNormal.id,
      movedLater.id,
      low.id,
    ])
  })

  it('moves a run once: the second of two racing transitions changes nothing and records nothing', async () => {
    const run = queuedRun(uuidv7(), 0)
    await store.insert(run)
    const take = (machineId: string) =>
      store.move(
        run.id,
        'Queued',
        {
          status: 'Running',
          machine_id: machineId,
          offered_at: at(1),
          lease_expires_at: at(60_000),
        },
        { at: at(1), kind: 'offered', details: { machineId } },
      )
    const first = await take('machine-a')
    expect(first).toMatchObject({ id: run.id, status: 'Running', machine_id: 'machine-a' })
    expect(await take('machine-b')).toBeUndefined()
    // A machine may only report on a run it holds.
    const wrongMachine = await store.move(
      run.id,
      'Running',
      { status: 'Succeeded', finished_at: at(2) },
      { at: at(2), kind: 'succeeded', machineId: 'machine-b' },
    )
    expect(wrongMachine).toBeUndefined()
    const events = await store.eventsOf([run.id])
    expect(events.map((e) => [e.kind, e.details])).toEqual([
      ['offered', JSON.stringify({ machineId: 'machine-a' })],
    ])
  })

  it('gives back only the offer it names, and only while it has not started', async () => {
    const run = queuedRun(uuidv7(), 0, {
      status: 'Running',
      machine_id: 'machine-a',
      offered_at: at(1),
    })
    await store.insert(run)
    const giveBack = (offeredAt: string) =>
      store.move(
        run.id,
        'Running',
        { status: 'Queued', machine_id: null, offered_at: null },
        { at: at(3), kind: 'requeued', machineId: 'machine-a', unstarted: true, offeredAt },
      )
    // An earlier offer of the run (it was given back and taken again since): not this one.
    expect(await giveBack(at(0))).toBeUndefined()
    await store.transition(run.id, 'Running', { started_at: at(2) })
    expect(await giveBack(at(1))).toBeUndefined()
    await store.transition(run.id, 'Running', { started_at: null })
    expect(await giveBack(at(1))).toMatchObject({ status: 'Queued', machine_id: null })
    expect((await store.eventsOf([run.id])).map((e) => e.kind)).toEqual(['requeued'])
  })

  it('tells what machines hold, and when the next deadline falls', async () => {
    const group = uuidv7()
    const [machineA, machineB] = [uuidv7(), uuidv7()]
    const held = [
      queuedRun(group, 0, { status: 'Running', machine_id: machineA, run_mode: 'attended' }),
      queuedRun(group, 0, { status: 'Running', machine_id: machineA }),
      queuedRun(group, 0, { status: 'Succeeded', machine_id: machineA }),
      queuedRun(group, 0, { status: 'Running', machine_id: machineB, os_account: 'other' }),
    ]
    for (const run of held) await store.insert(run)
    const rows = await store.heldBy([machineA])
    expect(rows.map((r) => [r.machine_id, r.run_mode]).sort()).toEqual([
      [machineA, 'attended'],
      [machineA, 'unattended'],
    ])
    expect(await store.heldBy([])).toEqual([])

    // The earliest of: a run's start plus its timeout and grace, a lease, a queue deadline.
    const timeoutAt = Date.parse(at(-10_000_000)) + 60_000 + 5_000
    await store.insert(
      queuedRun(uuidv7(), 0, {
        status: 'Running',
        machine_id: uuidv7(),
        started_at: at(-10_000_000),
        timeout_seconds: 60,
        lease_expires_at: at(3_600_000),
      }),
    )
    expect(await store.nextDeadline(5_000)).toBe(timeoutAt)
    // What the deadline timer reads of every running run: its deadlines, not its inputs.
    for (const row of await store.runningDeadlines())
      expect(Object.keys(row).sort()).toEqual(
        ['id', 'lease_expires_at', 'offered_at', 'started_at', 'timeout_seconds'].sort(),
      )
    await store.insert(
      queuedRun(uuidv7(), 0, {
        status: 'Running',
        machine_id: uuidv7(),
        started_at: at(0),
        lease_expires_at: at(-20_000_000),
      }),
    )
    expect(await store.nextDeadline(5_000)).toBe(Date.parse(at(-20_000_000)))
    await store.insert(queuedRun(uuidv7(), 0, { queue_deadline: at(-30_000_000) }))
    expect(await store.nextDeadline(5_000)).toBe(Date.parse(at(-30_000_000)))
  })
})
