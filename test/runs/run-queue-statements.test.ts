/**
 * What the server stores for a run, statement by statement (a run that can go at once is
 * stored already taken, in the commit that queues it), and a database error during the run
 * owner's check at dispatch (not a refusal: the run keeps waiting and goes later), with a real
 * agent process and the server in this process, whose statements the test watches and fails.
 */

import type { CompiledQuery } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { assertBuilt, waitFor } from '../support/cli-process.ts'
import { skipReason } from '../support/os-users.ts'
import { type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { api, type InProcessTestServer, startTestServer } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv'])
if (reason) process.stderr.write(`run queue statements suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('the run queue, statement by statement (real agent)', () => {
  let t: InProcessTestServer
  let m: RunMachine
  let flowId: string
  const run = () =>
    api(t.url, m.token, 'POST', `/desktop-flows/${flowId}/runs`, { connectionId: m.connectionId })
  const show = async (id: string) => (await api(t.url, m.token, 'GET', `/runs/${id}`)).body
  /** The statements the server runs, while a test watches them. */
  let watched: CompiledQuery[] | undefined
  /** A statement to fail as a passing database error would, while a test wants it to. */
  let failing: RegExp | undefined

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer(
      'sqlite',
      { DESKLINK_AGENT_HEARTBEAT_MS: '500' },
      {
        onQuery: (query) => {
          watched?.push(query)
          if (failing?.test(query.sql)) throw new Error('the database went away for a moment')
        },
      },
    )
    m = await startRunMachine(() => t.url)
    flowId = (
      await pushFlow(t.url, m.token, m.environmentId, { name: 'short', script: 'sleep 0.2' })
    ).id
  })
  afterAll(async () => {
    await m?.remove()
    await t?.close()
  })

  it('stores a run that can go at once already taken, in the commit that queues it', async () => {
    await m.setMachine({ maintenanceMode: false, slots: 1 })
    watched = []
    const answer = await run()
    const statements = watched
    watched = undefined
    expect(answer.status).toBe(202)
    expect(answer.body).toMatchObject({ status: 'Running', machineId: m.machineId })
    // One insert, of a row already taken; no update taking it out of the queue afterwards.
    const inserts = statements.filter((s) => s.sql.startsWith('insert into "runs"'))
    expect(inserts.map((s) => s.parameters.includes('Running'))).toEqual([true])
    const takes = statements.filter(
      (s) => s.sql.startsWith('update "runs" set "status" = ?') && s.parameters[0] === 'Running',
    )
    expect(takes).toEqual([])
    const ended = await waitForRun(t.url, m.token, answer.body.id)
    expect(ended.status).toBe('Succeeded')
    expect(ended.events.map((e: { kind: string }) => e.kind).slice(0, 3)).toEqual([
      'queued',
      'offered',
      'started',
    ])

    // A run no machine can take now (maintenance) joins the queue, stored queued, and is taken
    // from it later. (That a free machine does not let a new run pass one that waits is
    // run-queue.test.ts's to show.)
    await m.setMachine({ maintenanceMode: true })
    const first = (await run()).body.id
    watched = []
    const second = await run()
    const behind = watched
    watched = undefined
    expect(second.body.status).toBe('Queued')
    const queued = behind.filter((s) => s.sql.startsWith('insert into "runs"'))
    expect(queued.map((s) => s.parameters.includes('Queued'))).toEqual([true])
    await m.setMachine({ maintenanceMode: false })
    for (const id of [first, second.body.id])
      expect((await waitForRun(t.url, m.token, id)).status).toBe('Succeeded')
  })

  it('keeps a waiting run queued when its run-owner check meets a database error, and runs it after', async () => {
    await m.setMachine({ maintenanceMode: true, slots: 1 })
    const waiting = await run()
    expect(waiting.status, waiting.text).toBe(202)
    // The check granted at admission stands for two seconds; then the pass checks again.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    // The run owner's read of the connection's credential, which only that check makes.
    failing = /^select "credential_id" from "connections" where "id" = /
    try {
      watched = []
      await m.setMachine({ maintenanceMode: false, slots: 1 })
      await waitFor(
        () => watched?.some((query) => failing?.test(query.sql)) === true,
        'the run-owner check at dispatch',
      )
      // Not an answer about the run owner's rights: the run is not failed for them.
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      expect((await show(waiting.body.id)).status).toBe('Queued')
    } finally {
      failing = undefined
      watched = undefined
    }
    // The database is back: a later pass (the next heartbeat) checks again, and the run goes.
    expect(await waitForRun(t.url, m.token, waiting.body.id)).toMatchObject({
      status: 'Succeeded',
    })
  })
})
