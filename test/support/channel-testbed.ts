/**
 * A server with one test machine on the channel, which says yes to every connection test, and
 * a password connection to it with a flow that runs `true`: for tests that play the agent's
 * part themselves (offers answered, results sent, reconnects).
 */
import type { ServerOverrides } from '@desklink/server'
import { expect } from 'vitest'
import type WebSocket from 'ws'

import type { Backend } from './backends.ts'
import { type ChannelMessage, listenToChannel } from './channel-listener.ts'
import { pushFlow } from './runs.ts'
import { HELLO, registerTestMachine, type TestMachine } from './test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  type InProcessTestServer,
  signIn,
  startTestServer,
} from './test-server.ts'

export interface ChannelTestbed {
  readonly t: InProcessTestServer
  readonly token: string
  readonly environmentId: string
  readonly machine: TestMachine
  readonly flow: { id: string }
  readonly connectionId: string
  /** The machine's current socket, and what came on it. */
  ws: WebSocket
  channel: ReturnType<typeof listenToChannel>
  /** Sends a heartbeat with no sessions and no runs. */
  heartbeat: () => void
  /** Opens a new connection for the machine (after the last one was dropped), hello included. */
  reconnect(): Promise<void>
  close(): Promise<void>
}

/** `env`: server settings over the test defaults (a database URL through a relay, say). */
export async function startChannelTestbed(
  backend: Backend,
  env: Record<string, string> = {},
  overrides: ServerOverrides = {},
): Promise<ChannelTestbed> {
  const t = await startTestServer(backend, env, overrides)
  const token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
  const environmentId = (await api(t.url, token, 'GET', '/me')).body.roles[0].environmentId
  const machine = await registerTestMachine(t.url, token, environmentId, 'picky')
  let seq = 0
  const open = async () => {
    const ws = await machine.connect()
    const channel = listenToChannel(ws)
    ws.send(JSON.stringify(HELLO))
    await channel.next('welcome')
    // Whoever tests the connection gets a yes: this machine knows the account.
    ws.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString('utf8')) as ChannelMessage
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
    return { ws, channel }
  }
  const first = await open()
  const bed: Omit<ChannelTestbed, 'flow' | 'connectionId'> = {
    t,
    token,
    environmentId,
    machine,
    ...first,
    heartbeat: () => {
      bed.ws.send(JSON.stringify({ type: 'heartbeat', seq: ++seq, sessions: [], runningRuns: [] }))
    },
    async reconnect() {
      bed.ws.terminate()
      Object.assign(bed, await open())
    },
    async close() {
      bed.ws.terminate()
      await t.close()
    },
  }
  bed.heartbeat()
  const flow = await pushFlow(t.url, token, environmentId, { name: 'picky', script: 'true' })
  const connection = await api(t.url, token, 'POST', `/environments/${environmentId}/connections`, {
    name: 'picky',
    target: { machineId: machine.machineId },
    username: 'runner',
    password: 'runner-password',
  })
  expect(connection.body.status, connection.text).toBe('Connected')
  return Object.assign(bed, { flow, connectionId: connection.body.id as string })
}

/** What an agent sends when a run ended well (exit code 0, as `runner`). */
export function succeededMessage(runId: unknown): string {
  const now = new Date().toISOString()
  return JSON.stringify({
    type: 'runFinished',
    runId,
    status: 'Succeeded',
    exitCode: 0,
    outputs: {},
    error: null,
    osAccount: 'runner',
    startedAt: now,
    finishedAt: now,
  })
}
