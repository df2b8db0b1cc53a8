/**
 * A machine's presence, as the agent channel shows it, on both databases: a run for a machine
 * that is offline waits in its queue (saying so) and goes once the machine is back; a run that
 * lasts several leases goes on while the machine's heartbeats renew it; a run waiting for a
 * machine that is deleted fails at once. Heartbeats every 500 ms
 * here, so a lease is 1.5 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BACKENDS } from '../support/backends.ts'
import {
  type ChannelTestbed,
  startChannelTestbed,
  succeededMessage,
} from '../support/channel-testbed.ts'
import { waitForRun } from '../support/runs.ts'
import { api } from '../support/test-server.ts'

const HEARTBEAT_MS = 500
const LEASE_MS = 3 * HEARTBEAT_MS

describe.each(BACKENDS)('machine presence, on %s', (backend) => {
  let bed: ChannelTestbed
  /** The runs the machine says it holds in each heartbeat. */
  let holding: string[] = []
  let beating: NodeJS.Timeout | undefined

  const heartbeats = () => {
    let seq = 1_000
    beating = setInterval(() => {
      bed.ws.send(
        JSON.stringify({ type: 'heartbeat', seq: ++seq, sessions: [], runningRuns: holding }),
      )
    }, HEARTBEAT_MS / 2)
  }
  const requestRun = () =>
    api(bed.t.url, bed.token, 'POST', `/desktop-flows/${bed.flow.id}/runs`, {
      connectionId: bed.connectionId,
    })

  beforeAll(async () => {
    bed = await startChannelTestbed(backend, { DESKLINK_AGENT_HEARTBEAT_MS: String(HEARTBEAT_MS) })
    heartbeats()
  })
  afterAll(async () => {
    clearInterval(beating)
    await bed?.close()
  })

  it('keeps a run for an offline machine queued, saying why, and offers it when it is back', async () => {
    clearInterval(beating)
    bed.ws.terminate()
    await new Promise((resolve) => setTimeout(resolve, 200))
    const requested = await requestRun()
    expect(requested.status, requested.text).toBe(202)
    const runId = requested.body.id as string
    const queued = await waitForRun(
      bed.t.url,
      bed.token,
      runId,
      (r) => ((r.waiting as { machines?: unknown[] } | null)?.machines?.length ?? 0) > 0,
    )
    expect(queued.status).toBe('Queued')
    expect(queued.waiting.machines).toMatchObject([
      { machineId: bed.machine.machineId, code: 'NoListenerConnected' },
    ])

    await bed.reconnect()
    heartbeats()
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(runId)
    bed.ws.send(JSON.stringify({ type: 'runAccepted', runId }))
    bed.ws.send(succeededMessage(runId))
    expect((await waitForRun(bed.t.url, bed.token, runId)).status).toBe('Succeeded')
  })

  it('renews the lease of a run its machine keeps reporting', async () => {
    const requested = await requestRun()
    expect(requested.status, requested.text).toBe(202)
    const runId = requested.body.id as string
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(runId)
    holding = [runId]
    bed.ws.send(JSON.stringify({ type: 'runAccepted', runId }))
    // Several leases long: each heartbeat that names the run renews it.
    await new Promise((resolve) => setTimeout(resolve, 3 * LEASE_MS))
    expect((await api(bed.t.url, bed.token, 'GET', `/runs/${runId}`)).body.status).toBe('Running')
    bed.ws.send(succeededMessage(runId))
    await bed.channel.next('runFinishedAck')
    holding = []
    const ended = await waitForRun(bed.t.url, bed.token, runId)
    expect(ended.status).toBe('Succeeded')
    expect(ended.error).toBeNull()
  })

  // Last: the machine is gone afterwards.
  it('fails the runs waiting for a machine at once when it is deleted', async () => {
    const { t, token, machine } = bed
    const maintenance = await api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { maintenanceMode: true },
    })
    expect(maintenance.status, maintenance.text).toBe(200)
    const requested = await requestRun()
    expect(requested.status, requested.text).toBe(202)
    const runId = requested.body.id as string
    await waitForRun(
      t.url,
      token,
      runId,
      (r) => ((r.waiting as { machines?: unknown[] } | null)?.machines?.length ?? 0) > 0,
    )
    clearInterval(beating)
    const deleted = await api(t.url, token, 'DELETE', `/machines/${machine.machineId}`)
    expect(deleted.status, deleted.text).toBe(204)
    // Its target is gone with it: the run can never go, so it does not wait 6 hours.
    const ended = await waitForRun(t.url, token, runId, undefined, 5_000)
    expect(ended).toMatchObject({ status: 'Failed', error: { code: 'XrmMachineGroupNotFound' } })
  })
})
