#!/usr/bin/env node
// Idle agents benchmark: N simulated agents hold the real agent channel open to a Desklink
// server; the same N sockets are held by a bare ws server in the same run. Prints connect
// times and server memory per agent for both, and the ratio. See README.md.
//
//   node bench/agents/run.mjs [--agents 1000] [--concurrency 10] [--register-concurrency 20]
//                             [--settle-ms 3000] [--warmup 200] [--time-limit-s <auto>]
//
// Three child processes, each killed by PID at the end, on error, on Ctrl+C and at the time
// limit: the Desklink server (the built CLI, SQLite in a temporary directory), the bare ws
// server, and the fleet of agents. Everything binds to 127.0.0.1.
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

import { freePort } from '../lib/free-port.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const cli = join(root, 'bin', 'desklink.js')
const bundle = join(root, 'dist', 'desklink.mjs')
// Both servers get the same preload and flags, so they are measured the same way. The young
// generation is fixed at V8's 64-bit default maximum (16 MiB semi-spaces) from the start:
// otherwise the burst of connects grows it in whichever server has not grown it yet (the bare
// server, whose start allocates little), and that one-off 24 MiB would be charged to its agents.
const serverExecArgv = [
  '--expose-gc',
  '--min-semi-space-size=16',
  '--max-semi-space-size=16',
  '--import',
  pathToFileURL(join(here, 'memory-probe.mjs')).href,
]
const TARGET = { agents: 10_000, ratio: 2 }

const { values: options } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '10' },
    'register-concurrency': { type: 'string', default: '20' },
    'settle-ms': { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '200' },
    'time-limit-s': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (options.help) {
  process.stdout.write(
    readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\n')
      .slice(1, 7)
      .join('\n') + '\n',
  )
  process.exit(0)
}
const positive = (name) => {
  const value = Number(options[name])
  if (Number.isInteger(value) && value >= 1) return value
  process.stderr.write(`--${name} must be a positive integer, got '${options[name]}'\n`)
  process.exit(2)
}
let agents = positive('agents')
const concurrency = positive('concurrency')
const registerConcurrency = positive('register-concurrency')
const settleMs = Number(options['settle-ms'])
const warmup = Number(options.warmup)
// Registration dominates (about 5 ms per agent on 2 cores); 50 ms per agent is a generous bound.
const timeLimitS = options['time-limit-s']
  ? positive('time-limit-s')
  : Math.ceil(60 + agents * 0.05)

const log = (text) => process.stdout.write(`${text}\n`)

// Every socket costs one descriptor in the fleet and one in the server that holds it; all
// children inherit this process's limit. Node cannot raise it, so cap N and say so.
function openFileLimit() {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))
  const soft = Number(line?.split(/\s+/)[3])
  return Number.isFinite(soft) ? soft : Infinity
}
const fdLimit = openFileLimit()
if (agents > fdLimit - 200) {
  const capped = Math.max(1, fdLimit - 200)
  log(`Open file limit is ${fdLimit} (ulimit -n): capping agents from ${agents} to ${capped}.`)
  log('Raise it in the shell (ulimit -n) to run more.')
  agents = capped
}

/** Children started by this run, killed by PID in cleanup(). */
const children = new Set()
let dataDir
let cleaningUp

async function stopChild(child) {
  const exited = () => child.exitCode !== null || child.signalCode !== null
  child.stopping = true
  if (exited()) return
  const gone = new Promise((resolve) => child.once('exit', resolve))
  try {
    process.kill(child.pid, 'SIGTERM')
  } catch {
    return
  }
  await Promise.race([gone, sleep(3000)])
  if (!exited()) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      return
    }
    await Promise.race([gone, sleep(3000)])
  }
}

function cleanup() {
  cleaningUp ??= (async () => {
    await Promise.all([...children].map((child) => stopChild(child)))
    children.clear()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })()
  return cleaningUp
}

async function abort(message, code) {
  log(message)
  await cleanup()
  process.exit(code)
}
process.once('SIGINT', () => void abort('Interrupted: stopping the child processes.', 130))
process.once('SIGTERM', () => void abort('Terminated: stopping the child processes.', 143))
const deadline = setTimeout(
  () => void abort(`Time limit of ${timeLimitS} s reached (--time-limit-s): stopping.`, 124),
  timeLimitS * 1000,
)
deadline.unref()

/** Starts a Node child with an IPC channel; keeps the tail of its stderr for error messages. */
function start(name, script, args, { env, execArgv = [], stdout = 'ignore' } = {}) {
  const child = fork(script, args, { env, execArgv, stdio: ['ignore', stdout, 'pipe', 'ipc'] })
  children.add(child)
  child.label = name
  child.stderrTail = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text) => {
    child.stderrTail = (child.stderrTail + text).slice(-4000)
  })
  child.on('exit', (code, signal) => {
    if (!cleaningUp && !child.stopping)
      void abort(
        `${name} exited unexpectedly (code ${code}, signal ${signal}).\n${child.stderrTail}`,
        1,
      )
  })
  return child
}

let nextId = 1
/** Sends a message that expects one answer with the same id. */
function request(child, message, type = 'result') {
  const id = nextId++
  return new Promise((resolve, reject) => {
    const onMessage = (answer) => {
      if (answer?.id !== id || answer.type !== type) return
      child.off('message', onMessage)
      if (answer.error) reject(new Error(`${child.label}: ${answer.error}`))
      else resolve(answer)
    }
    child.on('message', onMessage)
    child.send({ ...message, id })
  })
}
const memoryOf = (child) => request(child, { type: 'memory' }, 'memory')
const fleetDo = async (fleet, cmd, args = {}) => (await request(fleet, { cmd, ...args })).result

async function waitHealthy(base, child) {
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(100)) {
    if (child.exitCode !== null) break
    try {
      if ((await fetch(`${base}/healthz`)).ok) return
    } catch {
      // not listening yet
    }
  }
  throw new Error(`the Desklink server did not become healthy.\n${child.stderrTail}`)
}

/** Starts the Desklink server on a fresh port; the data directory and password are kept. */
async function startDesklink(password = randomBytes(18).toString('base64url')) {
  dataDir ??= mkdtempSync(join(tmpdir(), 'desklink-bench-agents-'))
  const port = await freePort()
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('DESKLINK_')) delete env[key]
  Object.assign(env, {
    DESKLINK_ADMIN_PASSWORD: password,
    DESKLINK_DATA_DIR: dataDir,
    // Idle agents: the one heartbeat after welcome keeps them within three intervals for the
    // whole run; the per-connection timeout timer exists all the same.
    DESKLINK_AGENT_HEARTBEAT_MS: '600000',
    // Registering 10,000 machines outlasts the default ten-minute access token.
    DESKLINK_ACCESS_TOKEN_TTL_SECONDS: '3600',
  })
  const args = [
    'server',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--data-dir',
    dataDir,
    '--log-level',
    'warn',
  ]
  const child = start('Desklink server', cli, args, { env, execArgv: serverExecArgv })
  const base = `http://127.0.0.1:${port}`
  await waitHealthy(base, child)
  return { child, base, port, password }
}

async function startBare() {
  const child = start('bare ws server', join(here, 'bare-ws-server.mjs'), [], {
    execArgv: serverExecArgv,
  })
  const { port } = await new Promise((resolve) => {
    const onMessage = (message) => {
      if (message?.type !== 'listening') return
      child.off('message', onMessage)
      resolve(message)
    }
    child.on('message', onMessage)
  })
  return { child, port }
}

/** Connects N agents to `server`, measuring its memory before and after. */
async function measure(label, fleet, server, connectArgs) {
  // A first small batch, connected and dropped, makes the servers compile their hot paths and
  // load lazily initialised modules and caches before the "before" figure, which would
  // otherwise be charged to the agents (that is most of the difference at small N).
  const warm = Math.min(agents, warmup)
  if (warm > 0) {
    const warmed = await fleetDo(fleet, 'connect', {
      n: warm,
      concurrency,
      quiet: true,
      ...connectArgs,
    })
    if (warmed.failed > 0)
      throw new Error(`${label}: warm-up failed: ${warmed.firstFailures.join('; ')}`)
    await fleetDo(fleet, 'drop')
    await sleep(settleMs)
  }
  const before = await memoryOf(server)
  log(`${label}: connecting ${agents} agents, ${concurrency} at a time…`)
  const connect = await fleetDo(fleet, 'connect', { n: agents, concurrency, ...connectArgs })
  if (connect.failed > 0) {
    throw new Error(
      `${label}: ${connect.failed} of ${agents} agents failed to connect: ${connect.firstFailures.join('; ')}`,
    )
  }
  await sleep(settleMs)
  const after = await memoryOf(server)
  const held = await fleetDo(fleet, 'check')
  if (held.open !== agents) {
    throw new Error(
      `${label}: only ${held.open} of ${agents} channels still open after settling; closes by code: ${JSON.stringify(held.closedAfterWelcome)}`,
    )
  }
  await fleetDo(fleet, 'drop')
  await stopChild(server)
  return { connect, before, after }
}

async function main() {
  if (!existsSync(bundle))
    throw new Error('dist/desklink.mjs is missing: run `npm ci && npm run build` first')
  log(
    `Idle agents: ${agents} agents, connect concurrency ${concurrency}, settle ${settleMs} ms, ` +
      `node ${process.version}, ${cpus().length} CPUs, time limit ${timeLimitS} s`,
  )
  const fleet = start('fleet', join(here, 'fleet.mjs'), [])
  fleet.on('message', (message) => {
    if (message?.type === 'progress') log(`  ${message.phase}: ${message.done}/${message.total}`)
  })

  const setup = await startDesklink()
  log(
    `Desklink server at ${setup.base} (pid ${setup.child.pid}); registering ${agents} machines (setup, not measured)…`,
  )
  const registration = await fleetDo(fleet, 'register', {
    base: setup.base,
    n: agents,
    password: setup.password,
    concurrency: registerConcurrency,
  })
  log(`Registered ${registration.registered} machines in ${(registration.ms / 1000).toFixed(1)} s.`)
  // Measured on a fresh server process over the same database: the one that registered the
  // machines keeps a heap grown by 2N requests, whose free pages would absorb the agents'
  // memory and flatter the per-agent figure.
  await stopChild(setup.child)
  const desklink = await startDesklink(setup.password)
  log(
    `Desklink server restarted at ${desklink.base} (pid ${desklink.child.pid}) on the same database.`,
  )

  // The baseline first, while the Desklink server sits idle; one server at a time so that
  // neither competes with the other for the two cores while agents connect.
  const bare = await startBare()
  log(`Bare ws server at 127.0.0.1:${bare.port} (pid ${bare.child.pid}).`)
  const baseline = await measure('bare ws', fleet, bare.child, {
    url: `ws://127.0.0.1:${bare.port}/api/v1/agent/channel`,
  })
  const real = await measure('Desklink', fleet, desklink.child, {
    url: `ws://127.0.0.1:${desklink.port}/api/v1/agent/channel`,
    audience: `${desklink.base}/api/v1/agent`,
  })
  await stopChild(fleet)
  report(real, baseline)
}

function report(real, baseline) {
  const perAgent = (r, field) => (r.after[field] - r.before[field]) / agents
  const kib = (bytes) => (bytes / 1024).toFixed(2)
  const mib = (bytes) => (bytes / 1048576).toFixed(1)
  const ms = (value) => value.toFixed(2)
  const rows = [
    ['connect, all agents (s)', (r) => (r.connect.totalMs / 1000).toFixed(2)],
    ['connect p50 (ms)', (r) => ms(r.connect.p50)],
    ['connect p90 (ms)', (r) => ms(r.connect.p90)],
    ['connect p99 (ms)', (r) => ms(r.connect.p99)],
    ['connect max (ms)', (r) => ms(r.connect.max)],
    ['server RSS before (MiB)', (r) => mib(r.before.rss)],
    ['server RSS with agents (MiB)', (r) => mib(r.after.rss)],
    ['RSS per agent (KiB)', (r) => kib(perAgent(r, 'rss'))],
    ['JS heap per agent (KiB)', (r) => kib(perAgent(r, 'heapUsed'))],
    ['external per agent (KiB)', (r) => kib(perAgent(r, 'external'))],
  ]
  const width = Math.max(...rows.map(([name]) => name.length)) + 2
  const pad = (text, n) => String(text).padStart(n)
  log('')
  log(
    `Results for ${agents} idle agents; per agent = (with agents - before) / ${agents}, each after a ${settleMs} ms settle`,
  )
  log(`${''.padEnd(width)}${pad('Desklink', 12)}${pad('bare ws', 12)}${pad('ratio', 9)}`)
  for (const [name, value] of rows) {
    const a = Number(value(real))
    const b = Number(value(baseline))
    const ratio = name.includes('(MiB)') || !(b > 0) ? '' : (a / b).toFixed(2)
    log(
      `${name.padEnd(width)}${pad(value(real), 12)}${pad(value(baseline), 12)}${pad(ratio, 9)}`.trimEnd(),
    )
  }
  log(
    'Memory: process RSS after three forced full GCs, young generation fixed at 2 x 16 MiB and ' +
      'made resident (memory-probe.mjs);',
  )
  log(
    '        JS heap = V8 heapUsed after the same GCs. Connect: new WebSocket → welcome received.',
  )
  const ratio = perAgent(real, 'rss') / perAgent(baseline, 'rss')
  const met = ratio <= TARGET.ratio
  log('')
  log(`Memory ratio (Desklink RSS per agent / bare ws RSS per agent): ${ratio.toFixed(2)}`)
  log(
    agents >= TARGET.agents
      ? `Target (${TARGET.agents} agents at ratio <= ${TARGET.ratio}): ${met ? 'met' : 'NOT met'}`
      : `Target (${TARGET.agents} agents at ratio <= ${TARGET.ratio}): not assessed at ${agents} agents; run with --agents ${TARGET.agents}`,
  )
}

try {
  await main()
  await cleanup()
  process.exit(0)
} catch (error) {
  await abort(`Benchmark failed: ${error instanceof Error ? error.message : String(error)}`, 1)
}
