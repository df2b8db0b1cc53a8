/**
 * A machine's start and result of a run, through the real dispatcher and write batcher on real
 * databases (SQLite and PostgreSQL). A start and a result that come in one turn (a flow that
 * ended at once) are stored in one update with both events; a result that comes later finds
 * its start stored. Either way the run starts at the server's time of the acceptance, not at
 * the machine's clock. A start said again, or by another machine, changes nothing.
 */
import type { AgentRunFinished } from '@desklink/protocol'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { createLogger } from '../../packages/server/src/logging/index.ts'
import { createDispatcher } from '../../packages/server/src/runs/dispatcher.ts'
import { createRunStore, type RunStore } from '../../packages/server/src/runs/run-store.ts'
import {
  createWriteBatcher,
  type StorageHandle,
  type WriteBatcher,
} from '../../packages/server/src/storage/index.ts'
import { systemClock, uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS } from '../support/backends.ts'
import { openRunDatabase, queuedRunRow } from '../support/run-rows.ts'

/** The machine's own clock, far from the server's: a start taken from it would show. */
const MACHINE_STARTED_AT = '2000-01-01T00:00:00.000Z'

describe.each(BACKENDS)('run starts and results on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openRunDatabase>>
  let storage: StorageHandle
  let store: RunStore
  let dispatcher: ReturnType<typeof createDispatcher>
  let writes: WriteBatcher
  /** Conditional updates of runs, counted as the dispatcher asks for them. */
  let moves = 0
  const tenantId = uuidv7()
  const machineId = uuidv7()

  beforeAll(async () => {
    opened = await openRunDatabase(backend, tenantId)
    storage = opened.storage
    const real = createRunStore(storage.db, uuidv7)
    // The real store, with its conditional updates counted.
    const counted = (inner: RunStore): RunStore => ({
      ...inner,
      within: (trx) => counted(inner.within(trx)),
      move: (...args) => {
        moves += 1
        return inner.move(...args)
      },
    })
    store = counted(real)
    writes = createWriteBatcher(storage.db)
    dispatcher = createDispatcher({
      db: storage.db,
      store,
      writes,
      clock: systemClock,
      logger: createLogger({ level: 'silent' }),
      leaseMs: 60_000,
      ports: {
        send: () => true,
        isConnected: () => true,
        settingsOf: () => Promise.resolve(undefined),
        credentialFor: () => Promise.reject(new Error('no offers here')),
        runOwnerMayRun: () => Promise.resolve(true),
        onEnded: () => undefined,
      },
    })
  })
  beforeEach(() => {
    moves = 0
  })
  afterAll(async () => {
    dispatcher?.stop()
    await opened?.close()
  })

  /** A run offered to the machine, as a pass leaves it. */
  const offeredRun = async () => {
    const run = queuedRunRow(tenantId, uuidv7(), 0, {
      status: 'Running',
      machine_id: machineId,
      offered_at: new Date().toISOString(),
      lease_expires_at: new Date(Date.now() + 60_000).toISOString(),
    })
    await store.insert(run)
    return run.id
  }
  const result = (runId: string): AgentRunFinished => ({
    type: 'runFinished',
    runId,
    status: 'Succeeded',
    exitCode: 0,
    outputs: null,
    error: null,
    osAccount: 'runner',
    startedAt: MACHINE_STARTED_AT,
    finishedAt: new Date().toISOString(),
  })
  const storedRun = async (runId: string) => {
    const [run] = await storage.db.selectFrom('runs').selectAll().where('id', '=', runId).execute()
    const events = await store.eventsOf([runId])
    return { run, events }
  }
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

  it('stores a start and a result that came in one turn in one update, with both events', async () => {
    const runId = await offeredRun()
    const before = Date.now()
    const accepted = dispatcher.accepted(machineId, runId)
    await dispatcher.finished(machineId, result(runId))
    await accepted
    const { run, events } = await storedRun(runId)
    expect(run).toMatchObject({ status: 'Succeeded', exit_code: 0 })
    expect(events.map((e) => e.kind)).toEqual(['started', 'succeeded'])
    expect(run?.started_at).toBe(events[0]?.at)
    expect(Date.parse(run?.started_at ?? '')).toBeGreaterThanOrEqual(before - 1)
    expect(moves).toBe(1)
  })

  it('keeps the server’s start when the result comes while the start is being stored', async () => {
    const runId = await offeredRun()
    // A commit a moment ago: the batcher is busy, so the start's write waits for a turn.
    await writes.write(() => Promise.resolve())
    const accepted = dispatcher.accepted(machineId, runId)
    // The start's turn is over: its write is on its way when the result comes.
    await nextTurn()
    await dispatcher.finished(machineId, result(runId))
    await accepted
    const { run, events } = await storedRun(runId)
    expect(events.map((e) => e.kind)).toEqual(['started', 'succeeded'])
    expect(run?.started_at).toBe(events[0]?.at)
    expect(run?.started_at).not.toBe(MACHINE_STARTED_AT)
    expect(moves).toBe(2)
  })

  it('changes nothing for a start said again, or said by another machine', async () => {
    const runId = await offeredRun()
    // Another machine claims the run in the same turn: the run's own machine still starts it.
    const stranger = dispatcher.accepted(uuidv7(), runId)
    await dispatcher.accepted(machineId, runId)
    await stranger
    const first = await storedRun(runId)
    expect(first.run?.started_at).not.toBeNull()
    expect(first.events.map((e) => e.kind)).toEqual(['started'])
    expect(JSON.parse(first.events[0]?.details ?? 'null')).toEqual({ machineId })

    await new Promise((resolve) => setTimeout(resolve, 5))
    await dispatcher.accepted(machineId, runId)
    const again = await storedRun(runId)
    expect(again.run?.started_at).toBe(first.run?.started_at)
    expect(again.events.map((e) => e.kind)).toEqual(['started'])
  })
})
