/**
 * PostgreSQL that commits a run but whose answer never reaches the server (the connection
 * drops in between): the server finds out what was stored before it gives up, so the run is
 * neither lost nor started twice. PostgreSQL out of reach for a while: requests are answered
 * 503 with Retry-After, and the server carries on once it is back. Connections PostgreSQL
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

  const requestRun = () =>
    api(bed.t.url, bed.token, 'POST', `/desktop-flows/${bed.flow.id}/runs`, {
      connectionId: bed.connectionId,
    })

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
    const maintenance = (on: boolean) =>
      api(bed.t.url, bed.token, 'PATCH', `/machines/${bed.machine.machineId}`, {
        settings: { maintenanceMode: on },
      })
    expect((await maintenance(true)).status).toBe(200)
    proxy.armCommitLoss('runs')
    const answer = await requestRun()
    await proxy.lost()
    expect(answer.status, answer.text).toBe(202)
    expect(answer.body.status).toBe('Queued')
    expect((await maintenance(false)).status).toBe(200)
    const ended = await runOffered(answer.body.id as string)
    expect(ended.status).toBe('Succeeded')
    const kinds = (ended.events as { kind: string }[]).map((e) => e.kind)
    expect(kinds.filter((k) => k === 'offered')).toHaveLength(1)
    expect(await bed.channel.comes('runOffer', 300)).toBe(false)
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
