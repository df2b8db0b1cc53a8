/**
 * The dispatcher with a test agent speaking the real channel protocol, for what a real agent
 * does not do on demand:
 * - a machine that turns an offer down: the run goes back to its queue with the reason (an
 *   event and the machine's refusal), is not offered to that machine again before the
 *   machine's next heartbeat, and then runs there once;
 * - a waiting run that disappears from the database behind the dispatcher's back does not
 *   block its queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import {
  type ChannelTestbed,
  startChannelTestbed,
  succeededMessage,
} from '../support/channel-testbed.ts'
import { waitForRun } from '../support/runs.ts'
import type { TestMachine } from '../support/test-machine.ts'
import { api, type TestServer } from '../support/test-server.ts'

describe('runs with a test agent on the channel', () => {
  let bed: ChannelTestbed
  let t: TestServer
  let token: string
  let machine: TestMachine
  let ws: WebSocket
  let channel: ChannelTestbed['channel']
  let flow: { id: string }
  let connectionId: string
  let heartbeat: () => void

  beforeAll(async () => {
    bed = await startChannelTestbed('sqlite')
    ;({ t, token, machine, ws, channel, flow, connectionId, heartbeat } = bed)
  })
  afterAll(async () => {
    await bed?.close()
  })

  /** The run's offer arrives; the agent turns it down, and the run is cancelled out of the way. */
  async function offeredThenCancelled(runId: string) {
    const offer = await channel.next('runOffer', 5000)
    expect(offer.runId).toBe(runId)
    ws.send(
      JSON.stringify({ type: 'runRejected', runId: offer.runId, code: 'Cleanup', reason: 'done' }),
    )
    await api(t.url, token, 'POST', `/runs/${runId}/cancel`)
    heartbeat()
  }

  it('gets the run back in its queue with the reason, and runs it after its next heartbeat', async () => {
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
    })
    expect(run.status, run.text).toBe(202)
    const offer = await channel.next('runOffer')
    expect(offer.runId).toBe(run.body.id)
    ws.send(
      JSON.stringify({
        type: 'runRejected',
        runId: offer.runId,
        code: 'UIFlowAlreadyRunning',
        reason: 'busy with something else',
      }),
    )

    // Back in the queue, saying why, and not offered here again before a heartbeat.
    const waiting = await waitForRun(
      t.url,
      token,
      run.body.id,
      (r) =>
        r.status === 'Queued' &&
        (r.events as { kind: string }[]).some((e) => e.kind === 'rejected'),
    )
    expect(
      waiting.events.find((e: { kind: string }) => e.kind === 'rejected').details,
    ).toMatchObject({
      machineId: machine.machineId,
      machineName: 'picky',
      code: 'UIFlowAlreadyRunning',
    })
    expect(waiting.machineId).toBeNull()
    expect(await channel.comes('runOffer', 1500)).toBe(false)
    const explained = (await api(t.url, token, 'GET', `/runs/${run.body.id}`)).body
    expect(explained.waiting.machines).toEqual([
      expect.objectContaining({ machineId: machine.machineId, code: 'UIFlowAlreadyRunning' }),
    ])

    // Its next heartbeat says it may try again: offered once more, taken, finished.
    heartbeat()
    const again = await channel.next('runOffer')
    expect(again.runId).toBe(run.body.id)
    ws.send(JSON.stringify({ type: 'runAccepted', runId: again.runId }))
    ws.send(succeededMessage(again.runId))
    expect((await channel.next('runFinishedAck')).runId).toBe(run.body.id)
    const done = await waitForRun(t.url, token, run.body.id)
    expect(done).toMatchObject({ status: 'Succeeded', machineId: machine.machineId })
    expect(done.events.map((e: { kind: string }) => e.kind)).toEqual([
      'queued',
      'offered',
      'rejected',
      'offered',
      'started',
      'succeeded',
    ])
  })

  it('gives a run taken at admission and turned down its queue timeout', async () => {
    const settings = (changes: Record<string, unknown>) =>
      api(t.url, token, 'PATCH', `/environments/${bed.environmentId}/run-settings`, changes)
    await settings({ queueTimeoutSeconds: 1 })
    try {
      // The machine is free: the run is stored already taken, and never had a queue deadline
      // to announce. Turned down, it is back in its queue, which it may wait in for a second.
      const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId,
      })
      expect(run.body.status, run.text).toBe('Running')
      const offer = await channel.next('runOffer')
      ws.send(
        JSON.stringify({ type: 'runRejected', runId: offer.runId, code: 'Busy', reason: 'busy' }),
      )
      // Well before the lease (three heartbeat intervals, 45 s here) would look at it again.
      const failed = await waitForRun(t.url, token, run.body.id, undefined, 5_000)
      expect(failed).toMatchObject({ status: 'Failed', error: { code: 'NoCandidateMachine' } })
      expect(failed.error.details.subErrors).toEqual([
        expect.objectContaining({ machineId: machine.machineId, code: 'Busy' }),
      ])
    } finally {
      await settings({ queueTimeoutSeconds: 6 * 3600 })
      heartbeat()
    }
  })

  it('answers a run its first pass took with the events a read of it shows', async () => {
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, { connectionId })
    expect(run.status, run.text).toBe(202)
    const offer = await channel.next('runOffer', 5000)
    expect(offer.runId).toBe(run.body.id)
    expect(run.body).toMatchObject({ status: 'Running', machineId: machine.machineId })
    const read = await api(t.url, token, 'GET', `/runs/${run.body.id}`)
    expect(run.body.events).toEqual(read.body.events)
    expect(run.body.events.map((e: { kind: string }) => e.kind)).toEqual(['queued', 'offered'])
    // Its status URL says 202, come back in a second, until it ended; then 200.
    const outcome = () => api(t.url, token, 'GET', `/runs/${run.body.id}/outcome`)
    const going = await outcome()
    expect(going.status).toBe(202)
    expect(going.headers.get('retry-after')).toBe('1')
    expect(going.body).toMatchObject({ id: run.body.id, status: 'Running' })

    ws.send(JSON.stringify({ type: 'runAccepted', runId: offer.runId }))
    ws.send(succeededMessage(offer.runId))
    expect((await channel.next('runFinishedAck')).runId).toBe(run.body.id)
    const ended = await outcome()
    expect(ended.status).toBe(200)
    expect(ended.body.status).toBe('Succeeded')
  })

  it('says how long admission took and, to a client on its machine, when the run was queued and its offer sent', async () => {
    const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6
    const before = monotonicMs()
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, { connectionId })
    const after = monotonicMs()
    expect(run.status, run.text).toBe(202)
    const timing =
      /^admission;dur=([\d.]+), queued;desc="([\d.]+)", offer-sent;desc="([\d.]+)"$/.exec(
        run.headers.get('server-timing') ?? '',
      )
    expect(timing, run.headers.get('server-timing') ?? 'no Server-Timing').not.toBeNull()
    const [, admissionMs, queuedAt, offerSentAt] = (timing ?? []).map(Number)
    // On the machine's monotonic clock: the server's readings fall between this process's two,
    // the offer sent after the run was queued.
    expect(queuedAt).toBeGreaterThan(before)
    expect(offerSentAt).toBeGreaterThan(queuedAt)
    expect(offerSentAt).toBeLessThan(after)
    expect(admissionMs).toBeLessThan(after - before)
    await offeredThenCancelled(run.body.id)
  })

  it('tells a caller relayed by a proxy on its machine only how long admission took', async () => {
    const run = await api(
      t.url,
      token,
      'POST',
      `/desktop-flows/${flow.id}/runs`,
      { connectionId },
      { 'x-forwarded-for': '203.0.113.9' },
    )
    expect(run.status, run.text).toBe(202)
    expect(run.headers.get('server-timing')).toMatch(/^admission;dur=[\d.]+$/)
    await offeredThenCancelled(run.body.id)
  })

  /** Extended prioritization on: a run waits for its user's session instead of failing. */
  const waitForSessions = (on: boolean) =>
    api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { extendedQueuePrioritization: on },
    })

  it('says at once why a new run waits, and stores why once it waited a moment', async () => {
    // An attended run waits for a session this machine never has.
    expect((await waitForSessions(true)).status).toBe(200)
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      runMode: 'attended',
    })
    expect(run.status, run.text).toBe(202)
    const codes = (r: Record<string, unknown>) =>
      ((r.waiting as { machines: { code: string }[] } | null)?.machines ?? []).map((m) => m.code)
    // Said at once: the first pass's reasons, read from the server's memory.
    const seen = await waitForRun(t.url, token, run.body.id, (r) => codes(r).length > 0)
    expect(codes(seen)).toEqual(['AttendedUserNotLoggedIn'])
    const storage = openStorage(t.database.url)
    const stored = async () =>
      (
        await storage.db
          .selectFrom('runs')
          .select(['refusals', 'requested_at'])
          .where('id', '=', run.body.id)
          .executeTakeFirstOrThrow()
      ).refusals
    try {
      // Within its first second only the server's memory has the reasons (a busy server would
      // otherwise write them for every run that waits an instant); then they are stored, with
      // no further pass over the queue (no heartbeat comes meanwhile).
      const readAt = Date.now()
      const early = await stored()
      if (readAt - Date.parse(run.body.requestedAt as string) < 900) expect(early).toBeNull()
      for (let i = 0; i < 20 && (await stored()) === null; i++)
        await new Promise((resolve) => setTimeout(resolve, 200))
      expect(JSON.parse((await stored()) ?? '[]')).toEqual([
        expect.objectContaining({ code: 'AttendedUserNotLoggedIn' }),
      ])
    } finally {
      await storage.close()
      await api(t.url, token, 'POST', `/runs/${run.body.id}/cancel`)
      await waitForSessions(false)
    }
  })

  it('does not let a waiting run that vanished from the database block its queue', async () => {
    const post = (body: Record<string, unknown> = {}) =>
      api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, { connectionId, ...body })
    // The machine's one unattended slot goes to a run it takes.
    const holder = await post()
    expect(holder.status, holder.text).toBe(202)
    const held = await channel.next('runOffer', 5000)
    expect(held.runId).toBe(holder.body.id)
    ws.send(JSON.stringify({ type: 'runAccepted', runId: held.runId }))
    await waitForRun(t.url, token, holder.body.id, (r) => r.status === 'Running')
    // The next unattended run waits for the slot: the head of the queue, which holds up the
    // runs behind it, extended prioritization or not.
    const stuck = await post({ priority: 'high' })
    expect(stuck.status, stuck.text).toBe(202)
    await waitForRun(
      t.url,
      token,
      stuck.body.id,
      (r) => ((r.waiting as { machines: unknown[] } | null)?.machines ?? []).length > 0,
    )
    // Removed behind the dispatcher's back (as a tenant's removal cascades to its runs).
    const storage = openStorage(t.database.url)
    try {
      await storage.db.deleteFrom('runs').where('id', '=', stuck.body.id).execute()
    } finally {
      await storage.close()
    }

    // An attended run, which the machine could take (its user's session is open), waits behind
    // it at first. The vanished head is looked up again within a second of waiting, on a later
    // pass (each heartbeat starts one), and leaves the queue.
    const next = await post({ runMode: 'attended' })
    expect(next.status, next.text).toBe(202)
    const session = { id: 'x11:5', user: 'runner', uid: 1500, display: ':5', state: 'active' }
    for (let i = 0; i < 20 && !(await channel.comes('runOffer', 300)); i++)
      ws.send(
        JSON.stringify({
          type: 'heartbeat',
          seq: 1_000_000 + i,
          sessions: [{ ...session, source: 'x11' }],
          runningRuns: [holder.body.id],
        }),
      )
    const offer = await channel.next('runOffer', 100)
    expect(offer.runId).toBe(next.body.id)
    ws.send(
      JSON.stringify({
        type: 'runRejected',
        runId: offer.runId,
        code: 'Cleanup',
        reason: 'the test ends here',
      }),
    )
    await api(t.url, token, 'POST', `/runs/${next.body.id}/cancel`)
    await api(t.url, token, 'POST', `/runs/${holder.body.id}/cancel`)
  })
})
