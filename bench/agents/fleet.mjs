// The simulated agents: a process of its own, so that neither measured server shares its heap or
// its CPU time with the clients. Driven by run.mjs over IPC; one command at a time:
//
//   register  sign in as the administrator (authorization code + PKCE, as the CLI does) and
//             register N machines, each with its own Ed25519 identity key (setup, not measured)
//   connect   open N agent channels, bounded concurrency, and time each from creating the
//             WebSocket to receiving `welcome`; then send the one heartbeat a real agent sends
//             right after welcome, and stay idle
//   check     how many channels are still open (a server that drops idle agents fails the run)
//   drop      terminate every channel
//
// The wire traffic is the real agent's (packages/agent/src/channel/agent-channel.ts): bearer
// machine assertion on the upgrade, `hello`, `welcome`, `heartbeat`.
import { generateKeyPairSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'

import { api, assertion, pool as runPool, signIn } from '../lib/desklink-client.mjs'
import WebSocket from 'ws'

const MAX_MESSAGE_BYTES = 256 * 1024
const WELCOME_TIMEOUT_MS = 15_000
const HELLO = JSON.stringify({
  type: 'hello',
  protocolVersions: [1],
  agentVersion: '0.1.0',
  hostname: 'bench',
  os: 'linux',
})
const HEARTBEAT = JSON.stringify({ type: 'heartbeat', seq: 1, sessions: [], runningRuns: [] })

/** Registered machines: id and private identity key, in order. */
const machines = []
/** Open channels of the current phase. */
let sockets = []
/** Channels closed by the server after their welcome: code → count. */
let closedAfterWelcome = new Map()

const send = (message) => process.send?.(message)
const progress = (phase, done, total) => send({ type: 'progress', phase, done, total })
const pool = (phase, n, limit, work, quiet = false) =>
  runPool(phase, n, limit, work, quiet, progress)

async function register({ base, n, password, concurrency }) {
  const started = performance.now()
  const accessToken = await signIn(base, 'admin', password)
  const me = await api(base, accessToken, 'GET', '/me')
  const environmentId = me.roles?.[0]?.environmentId
  if (!environmentId) throw new Error('the administrator has no environment role')
  await pool('register', n, concurrency, async (i) => {
    const { token } = await api(
      base,
      accessToken,
      'POST',
      `/environments/${environmentId}/registration-tokens`,
      {},
    )
    const identity = generateKeyPairSync('ed25519')
    const group = generateKeyPairSync('x25519')
    const registered = await api(base, undefined, 'POST', '/agent/register', {
      registrationToken: token,
      name: `bench-${i}`,
      description: '',
      hostname: `bench-${i}`,
      os: 'linux',
      agentVersion: '0.1.0',
      identityPublicKey: identity.publicKey.export({ format: 'jwk' }).x,
      standaloneGroupPublicKey: group.publicKey.export({ format: 'jwk' }).x,
    })
    machines[i] = { id: registered.machineId, key: identity.privateKey }
  })
  return { registered: n, ms: performance.now() - started }
}

/**
 * Opens one channel; resolves with milliseconds from `new WebSocket` to `welcome`. A welcome
 * for another machine than `machineId` (when given) fails: the bench must not measure a
 * server that answers without authenticating.
 */
function connectOne(url, headers, machineId) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let welcomed = false
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: WELCOME_TIMEOUT_MS,
    })
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`no welcome within ${WELCOME_TIMEOUT_MS} ms`))
    }, WELCOME_TIMEOUT_MS)
    const fail = (error) => {
      clearTimeout(timer)
      reject(error)
    }
    ws.on('open', () => ws.send(HELLO))
    ws.on('unexpected-response', (_request, response) => {
      response.resume()
      ws.terminate()
      fail(new Error(`upgrade answered HTTP ${response.statusCode}`))
    })
    ws.on('error', fail)
    ws.on('close', (code, reason) => {
      if (!welcomed) return fail(new Error(`closed before welcome: ${code} ${reason}`))
      closedAfterWelcome.set(code, (closedAfterWelcome.get(code) ?? 0) + 1)
      return undefined
    })
    ws.on('message', (data) => {
      if (welcomed) return
      let message
      try {
        message = JSON.parse(data.toString())
      } catch {
        return fail(new Error('unparsable server message'))
      }
      if (message?.type !== 'welcome') return fail(new Error(`expected welcome, got ${data}`))
      if (machineId && message.machineId !== machineId)
        return fail(new Error(`welcome for ${message.machineId}, expected ${machineId}`))
      welcomed = true
      clearTimeout(timer)
      const ms = performance.now() - started
      ws.send(HEARTBEAT)
      sockets.push(ws)
      return resolve(ms)
    })
  })
}

async function connect({ url, n, concurrency, audience, quiet }) {
  if (audience && machines.length < n)
    throw new Error(`only ${machines.length} machines registered`)
  sockets = []
  closedAfterWelcome = new Map()
  const times = new Float64Array(n)
  const failures = []
  const started = performance.now()
  await pool(
    'connect',
    n,
    concurrency,
    async (i) => {
      // Signing happens before the clock starts: connect time is the server's part.
      const headers = audience
        ? { authorization: `Bearer ${await assertion(machines[i], audience)}` }
        : {}
      try {
        times[i] = await connectOne(url, headers, audience && machines[i].id)
      } catch (error) {
        times[i] = Number.NaN
        failures.push(error instanceof Error ? error.message : String(error))
      }
    },
    quiet,
  )
  const totalMs = performance.now() - started
  const ok = Array.from(times)
    .filter((t) => !Number.isNaN(t))
    .sort((a, b) => a - b)
  // Nearest-rank percentiles.
  const pct = (p) =>
    ok.length ? ok[Math.min(ok.length - 1, Math.ceil((p / 100) * ok.length) - 1)] : NaN
  return {
    connected: ok.length,
    failed: failures.length,
    firstFailures: [...new Set(failures)].slice(0, 5),
    totalMs,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: ok.at(-1) ?? NaN,
  }
}

function check() {
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length
  return { open, closedAfterWelcome: Object.fromEntries(closedAfterWelcome) }
}

function drop() {
  for (const ws of sockets) ws.terminate()
  const dropped = sockets.length
  sockets = []
  return { dropped }
}

const commands = { register, connect, check, drop }

process.on('message', (message) => {
  const command = commands[message?.cmd]
  if (!command) return
  Promise.resolve()
    .then(() => command(message))
    .then(
      (result) => send({ type: 'result', id: message.id, result }),
      (error) => send({ type: 'result', id: message.id, error: String(error?.stack ?? error) }),
    )
})
// run.mjs is gone (even if it was killed without cleaning up): do not linger.
process.on('disconnect', () => process.exit(1))
