/**
 * A machine's messages are handled in the order they came, on both databases: results a
 * machine sends again after a reconnect are stored before the heartbeat that follows them is
 * handled. Were the heartbeat first, the runs would look lost with the machine (it no longer
 * lists them) and fail with RunLeaseExpired, their results dropped. Results sent together may
 * be acknowledged in any order.
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

describe.each(BACKENDS)('results and heartbeats of a machine, on %s', (backend) => {
  let bed: ChannelTestbed

  beforeAll(async () => {
    bed = await startChannelTestbed(backend)
  })
  afterAll(async () => {
    await bed?.close()
  })

  it('stores results sent again after a reconnect before the heartbeat that follows them', async () => {
    const { t, token, machine, flow, connectionId } = bed
    const slots = await api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { slots: 4 },
    })
    expect(slots.status, slots.text).toBe(200)
    bed.heartbeat()
    const runIds: string[] = []
    for (let i = 0; i < 4; i++) {
      const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId,
      })
      expect(run.status, run.text).toBe(202)
      const offer = await bed.channel.next('runOffer', 5000)
      expect(offer.runId).toBe(run.body.id)
      bed.ws.send(JSON.stringify({ type: 'runAccepted', runId: offer.runId }))
      runIds.push(offer.runId as string)
    }
    for (const id of runIds) await waitForRun(t.url, token, id, (r) => r.startedAt !== null)

    // The machine loses its connection, ends the runs meanwhile and comes back: its journal's
    // results, then a heartbeat that no longer lists the runs, in one go.
    await bed.reconnect()
    for (const runId of runIds) bed.ws.send(succeededMessage(runId))
    bed.heartbeat()
    const acknowledged: unknown[] = []
    while (acknowledged.length < runIds.length)
      acknowledged.push((await bed.channel.next('runFinishedAck')).runId)
    expect(acknowledged.sort()).toEqual([...runIds].sort())
    for (const runId of runIds)
      expect(await waitForRun(t.url, token, runId)).toMatchObject({
        status: 'Succeeded',
        exitCode: 0,
      })
  })
})
