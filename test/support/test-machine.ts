/**
 * A machine registered through the real agent API with keys made the agent's way, for tests
 * that speak the channel protocol themselves (fuzzing, isolation).
 */
import { generateGroupKeyPair } from '@desklink/protocol'
import WebSocket from 'ws'

import { generateIdentityKey, signMachineAssertion } from '../../packages/agent/src/index.ts'
import { api } from './test-server.ts'

export interface TestMachine {
  readonly machineId: string
  readonly standaloneGroupId: string
  readonly identityPem: string
  /** The private key of the machine's own group: opens what is sealed to it. */
  readonly standaloneGroupPrivateKey: string
  assertion(): Promise<string>
  /** Opens a channel socket; resolves once open (or rejects on refusal). */
  connect(): Promise<WebSocket>
}

export async function registerTestMachine(
  base: string,
  token: string,
  environmentId: string,
  name = 'test-machine',
): Promise<TestMachine> {
  const registrationToken = (
    await api(base, token, 'POST', `/environments/${environmentId}/registration-tokens`, {})
  ).body.token
  const identity = generateIdentityKey()
  const group = await generateGroupKeyPair()
  const registered = await api(base, undefined, 'POST', '/agent/register', {
    registrationToken,
    name,
    hostname: 'test-host',
    os: 'linux',
    agentVersion: '0.1.0',
    identityPublicKey: identity.publicKey,
    standaloneGroupPublicKey: group.publicKey,
  })
  if (registered.status !== 201) throw new Error(`registration failed: ${registered.text}`)
  const machineId = registered.body.machineId as string
  const assertion = () => signMachineAssertion(identity.privateKeyPem, machineId, base)
  return {
    machineId,
    standaloneGroupId: registered.body.standaloneGroupId,
    identityPem: identity.privateKeyPem,
    standaloneGroupPrivateKey: group.privateKey,
    assertion,
    async connect() {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/agent/channel`, {
        headers: { authorization: `Bearer ${await assertion()}` },
        perMessageDeflate: false,
      })
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('unexpected-response', (_req, res) =>
          reject(new Error(`refused: ${res.statusCode}`)),
        )
        ws.once('error', reject)
      })
      return ws
    },
  }
}

/** Resolves with the close code, or 'open' if the socket is still open after `ms`. */
export function closeCode(ws: WebSocket, ms = 2000): Promise<number | 'open'> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms)
    ws.once('close', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

export function nextMessage(ws: WebSocket, ms = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), ms)
    ws.once('message', (data) => {
      clearTimeout(timer)
      resolve(JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>)
    })
  })
}

export const HELLO = {
  type: 'hello',
  protocolVersions: [1],
  agentVersion: '0.1.0',
  hostname: 'h',
  os: 'linux',
}
