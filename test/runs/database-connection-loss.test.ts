/**
 * PostgreSQL that commits a run but whose answer never reaches the server (the connection
 * drops in between): the server finds out what was stored before it gives up, so the run is
 * neither lost nor started twice; a request that failed unsure and is retried with its
 * idempotency key finds its run queued, a run stored taken that could not be read back at once
 * goes back to its queue once it can be, one read back after the machine reconnected waits for
 * the new connection's first heartbeat, and a machine's result whose commit answer was lost is
 * acknowledged once. PostgreSQL out of reach for a while (refusing, or taking connections and
 * never answering): requests are answered 503 with Retry-After within seconds, and the server
 * carries on once it is back. Connections PostgreSQL
 * drops while idle do not take the server down either. PostgreSQL only: SQLite runs in the
 * server's own process.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createTestDatabase, type TestDatabase } from '../support/backends.ts'
import {
  type ChannelTestbed,
  startChannelTestbed,
  succeededMessage,
} from '../support/channel-testbed.ts'
import { type PgProxy, startPgProxy } from '../support/pg-proxy.ts'
import { waitForRun } from '../support/runs.ts'
import { api } from '../support/test-server.ts'

const postgres = process.env.DESKLINK_TEST_DATABASE_URL
if (!postgres)
  process.stderr.write('database connection loss suite skipped: no DESKLINK_TEST_DATABASE_URL\n')

describe.skipIf(!postgres)('PostgreSQL connections lost', () => {
  let database: TestDatabase
  let proxy: PgProxy
  let bed: ChannelTestbed

  beforeAll(async () => {
    database = await createTestDatabase('postgres')
    proxy = await startPgProxy(database.url)
    bed = await startChannelTestbed('postgres', { DESKLINK_DATABASE_URL: proxy.url })
    bed.heartbeat()
  })
  afterAll(async () => {
    await bed?.close()
    await proxy?.close()
    await database?.drop()
  })

  const requestRun = (extra: Record<string, unknown> = {}) =>
    api(bed.t.url, bed.token, 'POST', `/desktop-flows/${bed.flow.id}/runs`, {
      connectionId: bed.connectionId,
      ...extra,
    })

  const maintenance = async (on: boolean) => {
    const changed = await api(bed.t.url, bed.token, 'PATCH', `/machines/${bed.machine.machineId}`, {
      settings: { maintenanceMode: on },
    })
    expect(changed.status, changed.text).toBe(200)
  }

  /** Runs the offer of `runId` to its end, as the agent would. */
  async function runOffered(runId: string) {
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(runId)
    bed.ws.send(JSON.stringify({ type: 'runAccepted', runId }))
    bed.ws.send(succeededMessage(runId))
    await bed.channel.next('runFinishedAck')
    return waitForRun(bed.t.url, bed.token, runId)
  }

  it('offers a run taken at admission whose commit answer was lost, once', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200))
    proxy.armCommitLoss('runs')
    const answer = await requestRun()
    await proxy.lost()
    expect(answer.status, answer.text).toBe(202)
    const ended = await runOffered(answer.body.id as string)
    expect(ended.status).toBe('Succeeded')
    const kinds = (ended.events as { kind: string }[]).map((e) => e.kind)
    expect(kinds.filter((k) => k === 'queued')).toHaveLength(1)
    expect(kinds.filter((k) => k === 'offered')).toHaveLength(1)
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
  })

  it('admits a run stored queued whose commit answer was lost, and offers it once', async () => {
    await maintenance(true)
    proxy.armCommitLoss('runs')
    const answer = await requestRun()
    await proxy.lost()
    expect(answer.status, answer.text).toBe(202)
    expect(answer.body.status).toBe('Queued')
    await maintenance(false)
    const ended = await runOffered(answer.body.id as string)
    expect(ended.status).toBe('Succeeded')
    const kinds = (ended.events as { kind: string }[]).map((e) => e.kind)
    expect(kinds.filter((k) => k === 'offered')).toHaveLength(1)
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
  })

  it('queues a run found by its idempotency key after its first request failed unsure', async () => {
    await maintenance(true)
    // The commit happens, its answer is lost, and nothing can be read back: the request fails.
    proxy.armCommitLoss('runs', { thenCut: true })
    const key = { idempotencyKey: `retry-${Date.now()}` }
    const first = await requestRun(key)
    await proxy.lost()
    expect(first.status, first.text).toBe(503)
    proxy.restore()
    // The retry finds the run the first request stored, and it joins its queue then.
    const again = await requestRun(key)
    expect(again.status, again.text).toBe(200)
    expect(again.body.status).toBe('Queued')
    await maintenance(false)
    const ended = await runOffered(again.body.id as string)
    expect(ended.status).toBe('Succeeded')
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
  })

  it('puts a run taken at admission back in its queue once it can be read, and offers it', async () => {
    // The take is committed, its answer is lost, and nothing can be read back: the request
    // fails, and the run is stored taken by a machine that was never offered it.
    proxy.armCommitLoss('runs', { thenCut: true })
    const first = await requestRun()
    await proxy.lost()
    expect(first.status, first.text).toBe(503)
    proxy.restore()
    // Read again once the database is back: never offered, so back to its queue, and offered.
    const offer = await bed.channel.next('runOffer')
    const runId = offer.runId as string
    bed.ws.send(JSON.stringify({ type: 'runAccepted', runId }))
    bed.ws.send(succeededMessage(runId))
    await bed.channel.next('runFinishedAck')
    const ended = await waitForRun(bed.t.url, bed.token, runId)
    expect(ended.status).toBe('Succeeded')
    const events = ended.events as { kind: string; details?: { reason?: string } }[]
    const requeued = events.filter((e) => e.kind === 'requeued')
    expect(requeued.map((e) => e.details?.reason)).toEqual(['offer not sent'])
    expect(events.filter((e) => e.kind === 'offered')).toHaveLength(2)
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
  })

  it('does not offer a take read back after its commit on a connection the machine made since', async () => {
    // The take's commit reaches PostgreSQL; while its answer is held back, the machine
    // reconnects. Read back, the take was for the old connection: the new one has not said
    // what it holds yet (its first heartbeat could give the run back while it is offered).
    proxy.armCommitLoss('runs', { holdMs: 3_000 })
    const answer = requestRun()
    await proxy.committed()
    let lostAlready = false
    void proxy.lost().then(() => (lostAlready = true))
    await bed.reconnect()
    // Else the take would be read back while the machine had no connection at all.
    expect(lostAlready).toBe(false)
    await proxy.lost()
    const first = await answer
    expect(first.status, first.text).toBe(202)
    const runId = first.body.id as string
    expect(await bed.channel.comes('runOffer', 500)).toBe(false)
    // Back in its queue: offered once the new connection's first heartbeat came, and once.
    bed.heartbeat()
    const ended = await runOffered(runId)
    expect(ended.status).toBe('Succeeded')
    const events = ended.events as { kind: string; details?: { reason?: string } }[]
    expect(events.filter((e) => e.kind === 'requeued').map((e) => e.details?.reason)).toEqual([
      'offer not sent',
    ])
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
  })

  it('acknowledges a result whose commit answer was lost, and reports the run ended', async () => {
    const answer = await requestRun()
    expect(answer.status, answer.text).toBe(202)
    const runId = answer.body.id as string
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(runId)
    bed.ws.send(JSON.stringify({ type: 'runAccepted', runId }))
    await waitForRun(bed.t.url, bed.token, runId, (r) => r.startedAt !== null)
    // The end's commit (its row and its `succeeded` event) happens; its answer is lost.
    proxy.armCommitLoss('run_events')
    bed.ws.send(succeededMessage(runId))
    await proxy.lost()
    // Read back, the end counts as stored: the machine is told so, once.
    expect((await bed.channel.next('runFinishedAck')).runId).toBe(runId)
    const ended = await waitForRun(bed.t.url, bed.token, runId)
    expect(ended.status).toBe('Succeeded')
    expect(await bed.channel.comes('runFinishedAck', 300)).toBe(false)
  })

  it('answers 503 with Retry-After while PostgreSQL cannot be reached, and carries on after', async () => {
    proxy.cut()
    try {
      const refused = await requestRun()
      expect(refused.status, refused.text).toBe(503)
      expect(refused.body.error.code).toBe('ServiceUnavailable')
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await fetch(`${bed.t.url}/readyz`)).status).toBe(503)
    } finally {
      proxy.restore()
    }
    const answer = await requestRun()
    expect(answer.status, answer.text).toBe(202)
    expect((await runOffered(answer.body.id as string)).status).toBe('Succeeded')
  })

  it('answers 503 within seconds when PostgreSQL takes connections and never answers', async () => {
    proxy.cut({ stall: true })
    try {
      // The pool drops the connections it sees closed; the request then needs a new one.
      await new Promise((resolve) => setTimeout(resolve, 200))
      const started = Date.now()
      const refused = await requestRun()
      expect(refused.status, refused.text).toBe(503)
      expect(Date.now() - started).toBeLessThan(15_000)
    } finally {
      proxy.restore()
    }
    const answer = await requestRun()
    expect(answer.status, answer.text).toBe(202)
    expect((await runOffered(answer.body.id as string)).status).toBe('Succeeded')
  }, 30_000)

  it('carries on when PostgreSQL drops its idle connections', async () => {
    const admin = new pg.Client({ connectionString: database.url })
    await admin.connect()
    try {
      const name = new URL(database.url).pathname.slice(1)
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [name],
      )
    } finally {
      await admin.end()
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    const answer = await requestRun()
    expect(answer.status, answer.text).toBe(202)
    expect((await runOffered(answer.body.id as string)).status).toBe('Succeeded')
  })
})
