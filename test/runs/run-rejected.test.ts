/**
 * A machine that turns an offer down, over the real channel protocol: the run goes back to its
 * queue with the reason (an event and the machine's refusal), is not offered to that machine
 * again before the machine's next heartbeat, and then runs there once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'

import { pushFlow, waitForRun } from '../support/runs.ts'
import { HELLO, registerTestMachine, type TestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

type Message = Record<string, unknown> & { type: string }

/** The channel as an agent sees it: every message kept, and a wait for the next of a type. */
function listen(ws: WebSocket) {
  const seen: Message[] = []
  const waiters: { type: string; resolve: (m: Message) => void }[] = []
  ws.on('message', (data) => {
    const message = JSON.parse((data as Buffer).toString('utf8')) as Message
    const waiter = waiters.findIndex((w) => w.type === message.type)
    if (waiter >= 0) waiters.splice(waiter, 1)[0]?.resolve(message)
    else seen.push(message)
  })
  return {
    next(type: string, ms = 5000): Promise<Message> {
      const early = seen.findIndex((m) => m.type === type)
      if (early >= 0) return Promise.resolve(seen.splice(early, 1)[0])
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms`)), ms)
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer)
            resolve(m)
          },
        })
      })
    },
    /** Whether a message of `type` comes within `ms`. */
    async comes(type: string, ms: number): Promise<boolean> {
      return this.next(type, ms).then(
        (m) => {
          seen.unshift(m)
          return true
        },
        () => {
          const left = waiters.findIndex((w) => w.type === type)
          if (left >= 0) waiters.splice(left, 1)
          return false
        },
      )
    },
  }
}

describe('a machine that turns an offer down', () => {
  let t: TestServer
  let token: string
  let environmentId: string
  let machine: TestMachine
  let ws: WebSocket
  let channel: ReturnType<typeof listen>
  let seq = 0
  const heartbeat = () =>
    ws.send(JSON.stringify({ type: 'heartbeat', seq: ++seq, sessions: [], runningRuns: [] }))

  beforeAll(async () => {
    t = await startTestServer('sqlite')
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, token, 'GET', '/me')).body.roles[0].environmentId
    machine = await registerTestMachine(t.url, token, environmentId, 'picky')
    ws = await machine.connect()
    channel = listen(ws)
    ws.send(JSON.stringify(HELLO))
    await channel.next('welcome')
    heartbeat()
    // Whoever tests the connection gets a yes: this machine knows the account.
    ws.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString('utf8')) as Message
      if (message.type === 'connectionTest')
        ws.send(
          JSON.stringify({
            type: 'connectionTestResult',
            requestId: message.requestId,
            ok: true,
            osAccount: 'runner',
          }),
        )
    })
  })
  afterAll(async () => {
    ws?.terminate()
    await t?.close()
  })

  it('gets the run back in its queue with the reason, and runs it after its next heartbeat', async () => {
    const flow = await pushFlow(t.url, token, environmentId, { name: 'picky', script: 'true' })
    const connection = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/connections`,
      {
        name: 'picky',
        target: { machineId: machine.machineId },
        username: 'runner',
        password: 'runner-password',
      },
    )
    expect(connection.body.status, connection.text).toBe('Connected')

    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId: connection.body.id,
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
    const now = new Date().toISOString()
    ws.send(JSON.stringify({ type: 'runAccepted', runId: again.runId }))
    ws.send(
      JSON.stringify({
        type: 'runFinished',
        runId: again.runId,
        status: 'Succeeded',
        exitCode: 0,
        outputs: {},
        error: null,
        osAccount: 'runner',
        startedAt: now,
        finishedAt: now,
      }),
    )
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
})
