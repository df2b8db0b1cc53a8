/**
 * Runs requested at the same moment for one target, on both databases: a machine is never
 * offered more runs than it has slots, however the admissions interleave. A run that can go at
 * once is stored already taken at admission; the others join the queue and are offered as
 * places free up, each once.
 *
 * On PostgreSQL every read and commit of an admission waits for the database, so admissions
 * of one target really run side by side; placing them from the same picture of the machine
 * would book its last slot twice. On SQLite an admission whose reads are kept in memory runs
 * through within one turn of the event loop, so there the test guards against regressions
 * that would make admissions interleave, not against the race itself.
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

const SLOTS = 2
const REQUESTS = 8

describe.each(BACKENDS)('runs requested at once, on %s', (backend) => {
  let bed: ChannelTestbed

  beforeAll(async () => {
    bed = await startChannelTestbed(backend)
  })
  afterAll(async () => {
    await bed?.close()
  })

  it('offers a machine no more runs than its slots, and every run once', async () => {
    const { t, token, machine, flow, connectionId } = bed
    const slots = await api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { slots: SLOTS },
    })
    expect(slots.status, slots.text).toBe(200)
    bed.heartbeat()
    // The machine's first heartbeat since it connected says what it holds: then it takes runs.
    await new Promise((resolve) => setTimeout(resolve, 200))

    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, () =>
        api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, { connectionId }),
      ),
    )
    for (const answer of answers) expect(answer.status, answer.text).toBe(202)
    const requested = answers.map((a) => a.body.id as string)

    const offered: string[] = []
    const takeOffer = async () => {
      const offer = await bed.channel.next('runOffer')
      offered.push(offer.runId as string)
      bed.ws.send(JSON.stringify({ type: 'runAccepted', runId: offer.runId }))
      return offer.runId as string
    }
    const running: string[] = []
    for (let i = 0; i < SLOTS; i++) running.push(await takeOffer())
    // Both slots are taken: nothing more comes until a run ends, and the head of the queue
    // says so.
    expect(await bed.channel.comes('runOffer', 500)).toBe(false)
    const waiting = await Promise.all(
      requested
        .filter((runId) => !offered.includes(runId))
        .map(async (runId) => (await api(t.url, token, 'GET', `/runs/${runId}`)).body),
    )
    const head = waiting.find((run) => run.waiting?.position === 1)
    expect(head?.waiting.machines).toMatchObject([
      { machineId: machine.machineId, code: 'UIFlowAlreadyRunning' },
    ])

    // Each run that ends frees its slot for exactly one more.
    while (offered.length < REQUESTS) {
      const ending = running.shift()
      bed.ws.send(succeededMessage(ending))
      await bed.channel.next('runFinishedAck')
      running.push(await takeOffer())
      expect(await bed.channel.comes('runOffer', 100)).toBe(false)
    }
    for (const runId of running) {
      bed.ws.send(succeededMessage(runId))
      await bed.channel.next('runFinishedAck')
    }

    expect([...offered].sort()).toEqual([...requested].sort())
    for (const runId of requested) {
      const ended = await waitForRun(t.url, token, runId)
      expect(ended.status).toBe('Succeeded')
      const kinds = (ended.events as { kind: string }[]).map((e) => e.kind)
      expect(kinds.filter((k) => k === 'offered')).toHaveLength(1)
      expect(kinds).not.toContain('requeued')
    }
  })
})
