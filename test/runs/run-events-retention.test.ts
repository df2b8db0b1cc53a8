/**
 * A run's events are kept for its environment's `queueEventsTtlMinutes` (7 days by default),
 * counted from its request, then deleted by the server's sweep; the run itself stays. The
 * server's clock is moved on by days, on both databases, with the sweep running every 200 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BACKENDS } from '../support/backends.ts'
import { type ChannelTestbed, startChannelTestbed } from '../support/channel-testbed.ts'
import { waitFor } from '../support/cli-process.ts'
import { ADMIN_PASSWORD, api, signIn } from '../support/test-server.ts'

const DAY_MS = 24 * 3600 * 1000
/**
 * The furthest a server of this file moved its clock. Run ids made in this process never go
 * back in time, whatever a clock says, so the next server's first runs carry that time: it
 * moves its own clock that much further.
 */
let furthestMs = 0

describe.each(BACKENDS)('run events past retention, on %s', (backend) => {
  let bed: ChannelTestbed
  /** How far the server's clock is ahead of the machine's. */
  let aheadMs = 0
  const clock = { now: () => new Date(Date.now() + aheadMs) }
  /** A token of the server's present (tokens expire on its clock). */
  const token = async () =>
    (await signIn(bed.t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
  const eventsOf = async (runId: string) =>
    (
      (await api(bed.t.url, await token(), 'GET', `/runs/${runId}`)).body.events as {
        kind: string
      }[]
    ).map((e) => e.kind)
  const settings = async (changes: Record<string, number>) =>
    api(
      bed.t.url,
      await token(),
      'PATCH',
      `/environments/${bed.environmentId}/run-settings`,
      changes,
    )
  /** A run that ended: queued on a machine in maintenance, then cancelled. */
  const endedRun = async () => {
    const requested = await api(
      bed.t.url,
      await token(),
      'POST',
      `/desktop-flows/${bed.flow.id}/runs`,
      {
        connectionId: bed.connectionId,
      },
    )
    expect(requested.status, requested.text).toBe(202)
    const id = requested.body.id as string
    expect((await api(bed.t.url, await token(), 'POST', `/runs/${id}/cancel`)).status).toBe(200)
    return id
  }

  beforeAll(async () => {
    bed = await startChannelTestbed(backend, { DESKLINK_RUN_EVENTS_SWEEP_MS: '200' }, { clock })
    const maintenance = await api(
      bed.t.url,
      bed.token,
      'PATCH',
      `/machines/${bed.machine.machineId}`,
      {
        settings: { maintenanceMode: true },
      },
    )
    expect(maintenance.status, maintenance.text).toBe(200)
  })
  afterAll(async () => {
    await bed?.close()
  })

  it('deletes the events of runs that ended once older than the environment keeps them', async () => {
    const old = await endedRun()
    expect(await eventsOf(old)).toEqual(['queued', 'cancelled'])
    expect((await settings({ queueEventsTtlMinutes: 30 * 24 * 60 })).status).toBe(200)

    aheadMs = furthestMs + 8 * DAY_MS
    furthestMs = aheadMs
    const recent = await endedRun()
    // Kept 30 days here: a few sweeps later, still there.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    expect(await eventsOf(old)).toEqual(['queued', 'cancelled'])

    // Back to the reference's 7 days: the 8-day-old run loses its events, and only it.
    expect((await settings({ queueEventsTtlMinutes: 7 * 24 * 60 })).status).toBe(200)
    await waitFor(async () => (await eventsOf(old)).length === 0, 'the old events to go')
    const run = (await api(bed.t.url, await token(), 'GET', `/runs/${old}`)).body
    expect(run).toMatchObject({ id: old, status: 'Cancelled', error: { code: 'Cancelled' } })
    expect(await eventsOf(recent)).toEqual(['queued', 'cancelled'])
  })
})
