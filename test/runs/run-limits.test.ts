/**
 * The limits of a run request, as the reference sets them: inputs of at most 2 MB, the flow's
 * defaults included (`PayloadTooLarge` past it); runs per minute per connection, counted before
 * the target is looked at, with when to try again; and a run timeout that is the flow's own when the request names
 * none, else three hours, and at most 24 hours; an environment may lower both. The machine is in
 * maintenance: runs stay queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { type ChannelTestbed, startChannelTestbed } from '../support/channel-testbed.ts'
import { pushFlow } from '../support/runs.ts'
import { api } from '../support/test-server.ts'

const MB = 1024 * 1024

describe('run request limits', () => {
  let bed: ChannelTestbed
  const queued: string[] = []

  const request = async (flowId: string, body: Record<string, unknown>) => {
    const answer = await api(bed.t.url, bed.token, 'POST', `/desktop-flows/${flowId}/runs`, {
      connectionId: bed.connectionId,
      ...body,
    })
    if (answer.status === 202) queued.push(answer.body.id as string)
    return answer
  }

  /** Changes the environment's run settings. */
  const settings = (changes: Record<string, number>) =>
    api(bed.t.url, bed.token, 'PATCH', `/environments/${bed.environmentId}/run-settings`, changes)

  beforeAll(async () => {
    bed = await startChannelTestbed('sqlite')
    const maintenance = await api(
      bed.t.url,
      bed.token,
      'PATCH',
      `/machines/${bed.machine.machineId}`,
      { settings: { maintenanceMode: true } },
    )
    expect(maintenance.status, maintenance.text).toBe(200)
  })
  afterAll(async () => {
    for (const runId of queued) await api(bed.t.url, bed.token, 'POST', `/runs/${runId}/cancel`)
    await bed?.close()
  })

  it('takes inputs of up to 2 MB, and refuses more with PayloadTooLarge', async () => {
    const flow = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'takes-a-blob',
      script: 'true',
      inputs: [{ name: 'blob', type: 'text', required: true }],
    })
    // The inputs' JSON: {"blob":"…"} is 11 characters around the value.
    const fits = await request(flow.id, { inputs: { blob: 'x'.repeat(2 * MB - 11) } })
    expect(fits.status, fits.text.slice(0, 300)).toBe(202)
    const over = await request(flow.id, { inputs: { blob: 'x'.repeat(2 * MB - 10) } })
    expect(over.status).toBe(413)
    expect(over.body.error).toMatchObject({
      code: 'PayloadTooLarge',
      details: { sizeBytes: 2 * MB + 1, maxBytes: 2 * MB },
    })
  })

  it('counts the flow’s defaults in the inputs’ limit', async () => {
    const flow = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'large-default',
      script: 'true',
      inputs: [{ name: 'blob', type: 'text', default: 'x'.repeat(5000) }],
    })
    expect((await settings({ maxRunInputBytes: 4096 })).status).toBe(200)
    try {
      const over = await request(flow.id, {})
      expect(over.status, over.text.slice(0, 300)).toBe(413)
      expect(over.body.error).toMatchObject({
        code: 'PayloadTooLarge',
        details: { sizeBytes: 5011, maxBytes: 4096 },
      })
      // The caller's own value takes the default's place.
      expect((await request(flow.id, { inputs: { blob: 'small' } })).status).toBe(202)
    } finally {
      await settings({ maxRunInputBytes: 2 * MB })
    }
  })

  it('throttles each connection at its limit per minute before looking at the target, and says when to try again', async () => {
    const flow = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'throttled',
      script: 'true',
    })
    const connection = async (name: string) => {
      const made = await api(
        bed.t.url,
        bed.token,
        'POST',
        `/environments/${bed.environmentId}/connections`,
        {
          name,
          target: { machineId: bed.machine.machineId },
          username: 'runner',
          password: 'runner-password',
        },
      )
      expect(made.body.status, made.text).toBe('Connected')
      return made.body.id as string
    }
    const [first, second] = [await connection('throttled-1'), await connection('throttled-2')]
    const through = (connectionId: string) => request(flow.id, { connectionId })
    // Earlier tests' runs still wait in the queue (the machine is in maintenance).
    const room = { runsPerMinutePerConnection: 3, maxQueuedRuns: queued.length + 3 }
    expect((await settings(room)).status).toBe(200)
    try {
      // Three in the minute go; the queue is then full as well, and the throttle answers first.
      for (let i = 0; i < 3; i++) expect((await through(first)).status).toBe(202)
      const throttled = await through(first)
      expect(throttled.status).toBe(429)
      expect(throttled.body.error).toMatchObject({
        code: 'DesktopFlowsActionThrottled',
        details: { limitPerMinute: 3 },
      })
      const retryAfter = Number(throttled.headers.get('retry-after'))
      expect(retryAfter).toBe(throttled.body.error.details.retryAfterSeconds)
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
      // Counted per connection: another one is not throttled (its run finds the queue full).
      const other = await through(second)
      expect(other.body.error.code).toBe('UIFlowRunQueueFull')
    } finally {
      await settings({ runsPerMinutePerConnection: 70, maxQueuedRuns: 500 })
    }
  })

  it('times a run out after the flow’s timeout, else three hours, and at most a day', async () => {
    const plain = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'no-timeout',
      script: 'true',
    })
    const quick = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'ten-minutes',
      script: 'true',
      timeoutSeconds: 600,
    })
    expect((await request(plain.id, {})).body.timeoutSeconds).toBe(3 * 3600)
    expect((await request(quick.id, {})).body.timeoutSeconds).toBe(600)
    expect((await request(quick.id, { timeoutSeconds: 24 * 3600 })).body.timeoutSeconds).toBe(
      24 * 3600,
    )
    const tooLong = await request(quick.id, { timeoutSeconds: 24 * 3600 + 1 })
    expect(tooLong.status).toBe(400)
    expect(tooLong.body.error.code).toBe('InvalidRequestBody')
  })

  it('gives a flow without a timeout of its own the environment’s default', async () => {
    const plain = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'default-timeout',
      script: 'true',
    })
    const own = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'own-timeout',
      script: 'true',
      timeoutSeconds: 600,
    })
    expect((await settings({ defaultRunTimeoutSeconds: 900 })).status).toBe(200)
    try {
      expect((await request(plain.id, {})).body.timeoutSeconds).toBe(900)
      expect((await request(own.id, {})).body.timeoutSeconds).toBe(600)
      // A default above the longest is cut to it, as a flow's own timeout is.
      await settings({ defaultRunTimeoutSeconds: 7200, maxRunTimeoutSeconds: 1800 })
      expect((await request(plain.id, {})).body.timeoutSeconds).toBe(1800)
    } finally {
      await settings({ defaultRunTimeoutSeconds: 3 * 3600, maxRunTimeoutSeconds: 24 * 3600 })
    }
    expect((await request(plain.id, {})).body.timeoutSeconds).toBe(3 * 3600)
  })

  it('takes lower limits from the environment’s settings', async () => {
    const lowered = await settings({ maxRunInputBytes: 4096, maxRunTimeoutSeconds: 600 })
    expect(lowered.status, lowered.text).toBe(200)
    try {
      const flow = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
        name: 'an-hour',
        script: 'true',
        inputs: [{ name: 'blob', type: 'text' }],
        timeoutSeconds: 3600,
      })
      const big = await request(flow.id, { inputs: { blob: 'x'.repeat(5000) } })
      expect(big.status).toBe(413)
      expect(big.body.error).toMatchObject({ code: 'PayloadTooLarge', details: { maxBytes: 4096 } })
      const long = await request(flow.id, { timeoutSeconds: 601 })
      expect(long.status).toBe(400)
      expect(long.body.error).toMatchObject({
        code: 'InvalidRequestBody',
        details: { field: 'timeoutSeconds', max: 600 },
      })
      // The flow's own hour is cut to the environment's longest.
      expect((await request(flow.id, {})).body.timeoutSeconds).toBe(600)
      expect((await request(flow.id, { timeoutSeconds: 600 })).status).toBe(202)
    } finally {
      await settings({ maxRunInputBytes: 2 * MB, maxRunTimeoutSeconds: 24 * 3600 })
    }
    const above = await settings({ maxRunInputBytes: 2 * MB + 1 })
    expect(above.status).toBe(400)
  })
})
