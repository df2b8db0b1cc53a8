/**
 * Heartbeats stored together, on both databases: each machine's latest one lands, a moment
 * later, and a disconnect stored after `settle` is never undone by a heartbeat from before it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createLogger } from '../../packages/server/src/logging/index.ts'
import { createHeartbeatRecorder } from '../../packages/server/src/machines/heartbeat-recorder.ts'
import type { MachineStore } from '../../packages/server/src/machines/machine-store.ts'
import type { StorageHandle } from '../../packages/server/src/storage/index.ts'
import { BACKENDS } from '../support/backends.ts'
import {
  at,
  groupRecord,
  type MachinePlace,
  machineRecord,
  openMachineDatabase,
} from '../support/machine-rows.ts'

const session = (user: string) => ({
  id: `s-${user}`,
  user,
  uid: 1000,
  display: ':1',
  state: 'active' as const,
  source: 'x11' as const,
})

describe.each(BACKENDS)('heartbeat recorder on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openMachineDatabase>>
  let storage: StorageHandle
  let machines: MachineStore
  let place: MachinePlace
  const logger = createLogger({ level: 'silent' })

  beforeAll(async () => {
    opened = await openMachineDatabase(backend)
    ;({ storage, machines, place } = opened)
  })
  afterAll(() => opened.close())

  /** A machine recorded as connected at `at()`, with no sessions. */
  async function connectedMachine(): Promise<string> {
    const own = groupRecord(place, 'standalone')
    await machines.insertGroup(own)
    const machine = machineRecord(
      place,
      { standaloneGroupId: own.id, groupId: own.id },
      { connected: true, lastHeartbeatAt: at() },
    )
    await machines.insertMachine(machine)
    return machine.id
  }
  const stored = async (id: string) => {
    const machine = await machines.findMachineForAgent(id)
    if (!machine) throw new Error(`machine ${id} not found`)
    return machine
  }

  it("stores each machine's latest heartbeat, once the moment of waiting is over", async () => {
    const recorder = createHeartbeatRecorder({ db: storage.db, logger })
    const [a, b] = [await connectedMachine(), await connectedMachine()]
    recorder.record(a, [session('alice')], at(1_000))
    recorder.record(b, [session('bob')], at(1_500))
    recorder.record(a, [session('carol')], at(2_000))
    const until = Date.now() + 5_000
    while ((await stored(b)).lastHeartbeatAt !== at(1_500) && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 25))
    expect(await stored(a)).toMatchObject({
      sessions: [session('carol')],
      lastHeartbeatAt: at(2_000),
      connected: true,
    })
    expect(await stored(b)).toMatchObject({
      sessions: [session('bob')],
      lastHeartbeatAt: at(1_500),
    })
    await recorder.stop()
  })

  it('never marks a machine connected again with a heartbeat from before its disconnect', async () => {
    const recorder = createHeartbeatRecorder({ db: storage.db, logger })
    const [waiting, storing] = [await connectedMachine(), await connectedMachine()]
    // Connections to spare (PostgreSQL), so the read below need not wait for one to open.
    await Promise.all([stored(waiting), stored(waiting), stored(waiting)])
    // One heartbeat still waits for its moment; the other is being stored (stop flushes it).
    recorder.record(storing, [session('bob')], at(1_000))
    const stopping = recorder.stop()
    await recorder.settle(storing)
    // Settled once the store under way landed: the disconnect is written after it.
    expect(await stored(storing)).toMatchObject({ lastHeartbeatAt: at(1_000) })
    await machines.recordConnection(storing, false, { at: at(2_000) })
    const late = createHeartbeatRecorder({ db: storage.db, logger })
    late.record(waiting, [session('alice')], at(1_000))
    await late.settle(waiting)
    await machines.recordConnection(waiting, false, { at: at(2_000) })
    // Longer than a heartbeat waits to be stored.
    await new Promise((resolve) => setTimeout(resolve, 600))
    await Promise.all([stopping, late.stop()])
    for (const id of [waiting, storing])
      expect(await stored(id)).toMatchObject({ connected: false, sessions: [] })
  })

  it('stores what waits when it stops, and takes nothing after', async () => {
    const recorder = createHeartbeatRecorder({ db: storage.db, logger })
    const machine = await connectedMachine()
    recorder.record(machine, [session('alice')], at(3_000))
    await recorder.stop()
    expect(await stored(machine)).toMatchObject({ lastHeartbeatAt: at(3_000) })
    recorder.record(machine, [], at(4_000))
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(await stored(machine)).toMatchObject({ lastHeartbeatAt: at(3_000) })
  })
})
