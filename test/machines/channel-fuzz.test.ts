/**
 * Every agent message type, malformed, oversized, out of order and replayed: the server
 * rejects it, logs it, never crashes, and keeps serving other agents. Plus machine assertions
 * that must not open a channel.
 */
import { createPrivateKey, randomUUID } from 'node:crypto'

import { AGENT_MAX_MESSAGE_BYTES, CHANNEL_CLOSE } from '@desklink/protocol'
import fc from 'fast-check'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { generateIdentityKey } from '../../packages/agent/src/index.ts'
import {
  closeCode,
  HELLO,
  nextMessage,
  registerTestMachine,
  type TestMachine,
} from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const HEARTBEAT = { type: 'heartbeat', seq: 1, sessions: [], runningRuns: [] }

describe('agent channel under bad input', () => {
  let t: TestServer
  let machine: TestMachine

  beforeAll(async () => {
    t = await startTestServer('sqlite')
    const token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const environmentId = (await api(t.url, token, 'GET', '/me')).body.roles[0].environmentId
    machine = await registerTestMachine(t.url, token, environmentId)
  })
  afterAll(async () => t.close())

  const rejectedLogs = () => t.logs.filter((l) => l.includes('agent message rejected')).length

  async function expectProtocolError(frames: (string | Buffer)[]) {
    const before = rejectedLogs()
    const ws = await machine.connect()
    for (const frame of frames) ws.send(frame)
    expect(await closeCode(ws)).toBe(CHANNEL_CLOSE.PROTOCOL_ERROR)
    expect(rejectedLogs()).toBeGreaterThan(before)
  }

  it.each([
    ['broken JSON', ['{"type":"hello"']],
    ['an unknown message type', [JSON.stringify({ type: 'launch-missiles' })]],
    ['a hello with wrong types', [JSON.stringify({ ...HELLO, protocolVersions: 'one' })]],
    ['a hello with unknown fields', [JSON.stringify({ ...HELLO, extra: true })]],
    ['a heartbeat before hello', [JSON.stringify(HEARTBEAT)]],
    ['a hello twice', [JSON.stringify(HELLO), JSON.stringify(HELLO)]],
    [
      'a heartbeat with a malformed session',
      [JSON.stringify(HELLO), JSON.stringify({ ...HEARTBEAT, sessions: [{ id: 1 }] })],
    ],
    [
      'a heartbeat with too many sessions',
      [
        JSON.stringify(HELLO),
        JSON.stringify({
          ...HEARTBEAT,
          sessions: Array.from({ length: 300 }, (_, i) => ({
            id: `s${i}`,
            user: 'u',
            uid: 1000,
            display: ':1',
            state: 'active',
            source: 'x11',
          })),
        }),
      ],
    ],
    ['a binary frame', [Buffer.from([1, 2, 3])]],
  ])('closes the channel on %s', async (_name, frames) => {
    await expectProtocolError(frames)
  })

  it('closes an oversized message with 1009 and keeps serving', async () => {
    const ws = await machine.connect()
    ws.send(JSON.stringify({ ...HELLO, hostname: 'x'.repeat(AGENT_MAX_MESSAGE_BYTES + 1024) }))
    expect(await closeCode(ws)).toBe(1009)
  })

  it('drops a replayed heartbeat and logs it, keeping the connection', async () => {
    const ws = await machine.connect()
    ws.send(JSON.stringify(HELLO))
    expect((await nextMessage(ws)).type).toBe('welcome')
    ws.send(JSON.stringify({ ...HEARTBEAT, seq: 5 }))
    ws.send(JSON.stringify({ ...HEARTBEAT, seq: 5 }))
    ws.send(JSON.stringify({ ...HEARTBEAT, seq: 4 }))
    expect(await closeCode(ws, 500)).toBe('open')
    expect(
      t.logs.filter((l) => l.includes('replayed heartbeat dropped')).length,
    ).toBeGreaterThanOrEqual(2)
    ws.close()
  })

  it('refuses a hello with no common protocol version', async () => {
    const ws = await machine.connect()
    ws.send(JSON.stringify({ ...HELLO, protocolVersions: [999] }))
    expect(await closeCode(ws)).toBe(CHANNEL_CLOSE.NO_COMMON_VERSION)
  })

  it('survives arbitrary JSON messages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 3 }),
        async (messages) => {
          const ws = await machine.connect()
          for (const message of messages) ws.send(JSON.stringify(message))
          const code = await closeCode(ws, 300)
          if (code === 'open') ws.close()
          else expect([CHANNEL_CLOSE.PROTOCOL_ERROR, CHANNEL_CLOSE.SUPERSEDED]).toContain(code)
        },
      ),
      { numRuns: 40 },
    )
  })

  it('refuses assertions that are replayed, forged, expired or for another audience', async () => {
    const url = `${t.url.replace('http', 'ws')}/api/v1/agent/channel`
    const refused = async (assertion: string) => {
      const { default: WebSocket } = await import('ws')
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${assertion}` } })
      return new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.once('open', () => {
          ws.close()
          resolve(101)
        })
      })
    }
    const used = await machine.assertion()
    const first = await machine.connect()
    first.close()
    expect(await refused(used)).toBe(101)
    expect(await refused(used)).toBe(401)
    const stranger = generateIdentityKey()
    const now = Math.floor(Date.now() / 1000)
    const sign = (key: string, options: { aud?: string; iat?: number; exp?: number }) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', typ: 'desklink-machine+jwt' })
        .setIssuer(machine.machineId)
        .setSubject(machine.machineId)
        .setAudience(options.aud ?? `${t.url}/api/v1/agent`)
        .setIssuedAt(options.iat ?? now)
        .setExpirationTime(options.exp ?? now + 120)
        .setJti(randomUUID())
        .sign(createPrivateKey(key))
    // A positive control: the same construction with the machine's key is accepted.
    expect(await refused(await sign(machine.identityPem, {}))).toBe(101)
    // A clock a few seconds fast is tolerated.
    expect(await refused(await sign(machine.identityPem, { iat: now + 5, exp: now + 125 }))).toBe(
      101,
    )
    expect(await refused(await sign(stranger.privateKeyPem, {}))).toBe(401)
    expect(await refused(await sign(machine.identityPem, { iat: now - 200, exp: now - 60 }))).toBe(
      401,
    )
    expect(await refused(await sign(machine.identityPem, { exp: now + 3600 }))).toBe(401)
    expect(
      await refused(
        await sign(machine.identityPem, { aud: 'https://elsewhere.example/api/v1/agent' }),
      ),
    ).toBe(401)
    expect(await refused('not-a-jwt')).toBe(401)
  })

  it('survives clients that reset the connection during the upgrade', async () => {
    const { connect } = await import('node:net')
    const { port } = new URL(t.url)
    const assertion = await machine.assertion()
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const socket = connect(Number(port), '127.0.0.1', () => {
              socket.write(
                `GET /api/v1/agent/channel HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
                  `Authorization: Bearer ${i % 2 === 0 ? assertion : 'not-a-jwt'}\r\n\r\n`,
              )
              socket.resetAndDestroy()
              resolve()
            })
            socket.on('error', () => resolve())
          }),
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })

  it('keeps serving after all of it', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
    const ws = await machine.connect()
    ws.send(JSON.stringify(HELLO))
    expect((await nextMessage(ws)).type).toBe('welcome')
    ws.close()
    expect(t.logs.filter((l) => l.includes('"level":50'))).toEqual([])
  })
})
