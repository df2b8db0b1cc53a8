#!/usr/bin/env node
// Dispatch benchmark: how fast a queued run reaches a machine, and how many no-op runs per
// second go through end to end. Simulated agents speak the real agent channel (hello, heartbeat,
// connectionTest, runOffer → runAccepted + runFinished); the server is the built CLI in a child
// process, on SQLite (and on PostgreSQL when --postgres URL or DESKLINK_TEST_DATABASE_URL is given).
//
//   node bench/dispatch/run.mjs [--samples 1000] [--warmup 5000] [--pause-ms 2]
//                               [--idle-agents 999] [--runs 3000] [--concurrency 64]
//                               [--machines 4] [--postgres URL] [--profile DIR]
//
// Latency: from the moment the server queued the run (its Server-Timing `queued` figure, on the
// machine's monotonic clock, which this process shares) to the offer arriving at the agent, one
// run at a time after an idle pause, with 1 agent connected and with all machines' agents plus
// the idle agents; and from just before the request. The server and this process (the agents)
// run on separate cores meanwhile, as an agent on a machine of its own; for reference, the paced
// samples are taken again with both where the OS puts them. The floor, measured in the same
// run: one WebSocket round trip between this process and the server plus one SQLite commit (WAL,
// synchronous=NORMAL, as the server runs it). Before each sample, after the same pause: a ping
// frame over the agent's connection, answered by the server's WebSocket layer, to wake the
// server (a run's request wakes it before the run is queued); the commit, timed; a second ping,
// timed.
// For reference, the same latency with runs back to back, and the commit timed back to back.
// Throughput: N no-op runs with C requests in flight over M machines, until every run ended.
import { execFileSync, fork, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import Database from 'better-sqlite3'
import WebSocket from 'ws'

import { api, assertion, leanClient, pool, signIn } from '../lib/desklink-client.mjs'
import { freePort } from '../lib/free-port.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const cli = join(here, '..', '..', 'bin', 'desklink.js')
const TARGET = { p50Ratio: 3, p99Ratio: 10, sqliteRunsPerSecond: 1000 }

const { values: options } = parseArgs({
  options: {
    // A thousand samples: the p99 is then the 990th of them (ten are slower), not the 198th of 200.
    samples: { type: 'string', default: '1000' },
    // Runs before the samples, not counted: the server's code paths get compiled first. After
    // 2,000 runs the engine was still compiling (about 40 compilations during the samples, each
    // running on a core the server needed); after 5,000, about 8.
    warmup: { type: 'string', default: '5000' },
    // Idle time before each timed run and before each pair of the floor's pings, so that the
    // server is done with the previous run's acceptance and result when a sample starts.
    'pause-ms': { type: 'string', default: '2' },
    'idle-agents': { type: 'string', default: '999' },
    runs: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '64' },
    machines: { type: 'string', default: '4' },
    postgres: { type: 'string', default: process.env.DESKLINK_TEST_DATABASE_URL ?? '' },
    // Writes a CPU profile of each server run into this directory (node --cpu-prof).
    profile: { type: 'string', default: '' },
  },
})
const number = (name) => Number(options[name])
/** Each numeric option's least value. */
const LEAST = {
  samples: 1,
  warmup: 0,
  'pause-ms': 0,
  'idle-agents': 0,
  runs: 1,
  concurrency: 1,
  machines: 1,
}
for (const [name, least] of Object.entries(LEAST)) {
  if (!/^\d+$/.test(options[name]) || number(name) < least) {
    process.stderr.write(`--${name} must be a whole number of at least ${least}\n`)
    process.exit(2)
  }
}
const say = (text) => process.stdout.write(`${text}\n`)
const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}
const ms = (v) => `${v.toFixed(2)} ms`
/** Paced samples in a turn of one placement, before the other's turn (see `latency`). */
const TURN_SAMPLES = 100
/** Untimed runs after the processes moved, before a turn's samples: caches refill. */
const SETTLING_RUNS = 20
/** The idle pause before each paced sample. */
const pause = () => new Promise((resolve) => setTimeout(resolve, number('pause-ms')))
/**
 * A `performance.now()` reading in ms of the machine's monotonic clock, the clock of the
 * server's `queued` figure. The origin comes from the closest of a few pairs of readings: a
 * pause of this process between two readings would put every conversion off by the pause.
 */
const monotonicMs = (() => {
  const hr = () => Number(process.hrtime.bigint()) / 1e6
  let best = { gap: Infinity, origin: 0 }
  for (let i = 0; i < 20; i++) {
    const before = hr()
    const now = performance.now()
    const after = hr()
    if (after - before < best.gap)
      best = { gap: after - before, origin: (before + after) / 2 - now }
  }
  return (performanceNow) => best.origin + performanceNow
})()

/**
 * WebSocket round trips between this process and the server over `ws`, one after the other: a
 * ping frame, answered with a pong by the server's WebSocket layer on its event loop, with no
 * Desklink handler. Over the agent's own connection, it is the transport an offer takes,
 * between the same two processes: the floor's first step.
 */
async function roundTrips(ws, samples) {
  const times = []
  for (let i = 0; i < samples; i++) {
    const started = performance.now()
    await new Promise((resolve) => {
      ws.once('pong', resolve)
      ws.ping()
    })
    times.push(performance.now() - started)
  }
  return times
}

/** The cores of a `taskset -c` list such as `0-3,5`. */
const coresOf = (list) =>
  list.split(',').flatMap((part) => {
    const [first, last = first] = part.split('-').map(Number)
    return Array.from({ length: last - first + 1 }, (_, i) => first + i)
  })

/**
 * Where the server and this process (the simulated agents) run, set with `taskset` on every
 * thread of each. `separate`: this process on one core and the server on all the others, as
 * an agent on a machine of its own never shares the server's cores. `shared`: both on every core
 * this process was allowed, where the OS puts them. Undefined with fewer than two cores, without
 * `taskset`, or where the affinity cannot be set: then the OS places both throughout.
 *
 * Why it matters on a small machine: sharing cores, the OS tends to wake a process on the core
 * of the process that woke it. A ping's answer then finds this process at once on the server's
 * core, the server being idle again; but an offer arrives while the server still has the run's
 * answer to write, and this process waits for the core (see the README).
 */
function corePlacement(serverPid) {
  const taskset = (...args) => execFileSync('taskset', args, { encoding: 'utf8' })
  let allowed
  try {
    const answer = taskset('-c', '-p', String(process.pid))
    allowed = answer.slice(answer.lastIndexOf(':') + 1).trim()
  } catch {
    return undefined
  }
  const cores = coresOf(allowed)
  if (cores.length < 2) return undefined
  const agentsCore = cores.at(-1)
  const serverCores = cores.slice(0, -1).join(',')
  const pin = (pid, list) => taskset('-a', '-p', '-c', list, String(pid))
  const placement = {
    serverCores,
    agentsCore,
    separate() {
      pin(serverPid, serverCores)
      pin(process.pid, String(agentsCore))
    },
    shared() {
      pin(serverPid, allowed)
      pin(process.pid, allowed)
    },
  }
  try {
    placement.separate()
    placement.shared()
  } catch {
    // Refused half way: whatever was set is given back, as far as it can be.
    for (const pid of [serverPid, process.pid]) {
      try {
        pin(pid, allowed)
      } catch {
        // Nothing more to do: the bench says the OS placed both.
      }
    }
    return undefined
  }
  return placement
}

/**
 * Whether the main threads of this process and of `pid` last ran on the same core: read as an
 * offer arrives, it tells whether the agents found the server on their core.
 */
function onOneCore(pid) {
  // Field 39 of /proc/<pid>/stat, the core the thread last ran on, counted after the command's
  // closing parenthesis (a command may hold spaces).
  const core = (of) => {
    const stat = readFileSync(`/proc/${of}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[36]
  }
  try {
    return core('self') === core(pid)
  } catch {
    return undefined
  }
}

/**
 * For reference only: round trips to a bare echo server in a process of its own, after as many
 * warm-up round trips. None of the server's work can slow these down, but they depend on where
 * the scheduler puts the two processes.
 */
async function echoRoundTrips(samples, warmup) {
  const echo = fork(join(here, '..', 'lib', 'ws-echo.mjs'), { stdio: 'ignore' })
  try {
    const port = await new Promise((resolve, reject) => {
      echo.once('message', resolve)
      echo.once('error', reject)
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    await new Promise((resolve) => ws.once('open', resolve))
    const times = (await roundTrips(ws, warmup + samples)).slice(warmup)
    ws.close()
    return { p50: pct(times, 50), p99: pct(times, 99) }
  } finally {
    echo.kill('SIGKILL')
  }
}

/**
 * The floor's second step: a small insert committed to a SQLite file in WAL mode with
 * synchronous=NORMAL, as the server commits. `once()` times one commit; the phases time one in
 * each floor pair, after the same idle pause as a sample, as the server commits a run after a
 * pause. `backToBack()` times them one after the other, before the server starts, for reference:
 * the commit at its fastest, with the core never idle and every cache warm, the floor of earlier
 * rounds.
 */
function floorCommits() {
  const dir = mkdtempSync(join(tmpdir(), 'desklink-floor-'))
  let db
  try {
    db = new Database(join(dir, 'floor.db'))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.exec('create table runs (id text primary key, body text)')
  } catch (error) {
    db?.close()
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const insert = db.prepare('insert into runs values (?, ?)')
  const body = 'x'.repeat(512)
  const once = () => {
    const id = randomBytes(16).toString('hex')
    const started = performance.now()
    insert.run(id, body)
    return performance.now() - started
  }
  return {
    once,
    backToBack(samples, warmup) {
      for (let i = 0; i < warmup; i++) once()
      const commits = Array.from({ length: samples }, once)
      return { p50: pct(commits, 50), p99: pct(commits, 99) }
    },
    close() {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * For reference, not the floor: the database's own part of storing a run that goes at once, run
 * straight on better-sqlite3 with none of the server's code around it. The statements are those
 * the server commits for such a run (begin, the run's insert, its `queued` and `offered` events
 * in one insert, commit), on the server's own file once it has stopped: its schema, indexes and
 * the rows the bench left, a real run's values under a new time-ordered id. Each run is marked
 * finished after its timing, as the server's runs are by the next sample, and the log is
 * checkpointed now and then between timings, as the server's worker thread does beside its
 * commits. Paced like the samples (after the same pause), then back to back, each after `warmup`
 * untimed ones.
 */
async function takeStatementTimes(file, samples, warmup, pause) {
  const db = new Database(file)
  try {
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    // The server's log is checkpointed by a worker thread, not in a commit: here, between timings.
    db.pragma('wal_autocheckpoint = 0')
    const run = db.prepare("select * from runs where status = 'Succeeded' limit 1").get()
    const eventOf = db.prepare('select * from run_events where run_id = ? and kind = ?')
    const [queued, offered] = ['queued', 'offered'].map((kind) => eventOf.get(run.id, kind))
    const insertOf = (table, row) => {
      const columns = Object.keys(row)
      const statement = db.prepare(
        `insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`,
      )
      return (values) => statement.run(columns.map((c) => values[c]))
    }
    const insertRun = insertOf('runs', run)
    // Both events in one statement, as the server inserts them.
    const eventColumns = Object.keys(queued)
    const eventRow = `(${eventColumns.map(() => '?').join(', ')})`
    const bothEvents = db.prepare(
      `insert into run_events (${eventColumns.join(', ')}) values ${eventRow}, ${eventRow}`,
    )
    const insertEvents = (...events) =>
      bothEvents.run(events.flatMap((event) => eventColumns.map((c) => event[c])))
    const begin = db.prepare('begin')
    const commit = db.prepare('commit')
    const finish = db.prepare("update runs set status = 'Succeeded' where id = ?")
    // Ids as the server makes them: time first (UUID v7), so each lands at the end of the key.
    let sequence = 0
    const newId = () =>
      `${Date.now().toString(16).padStart(12, '0')}${(sequence++).toString(16).padStart(8, '0')}` +
      randomBytes(6).toString('hex')
    let taken = 0
    const take = () => {
      const id = newId()
      const started = performance.now()
      begin.run()
      insertRun({ ...run, id, status: 'Running', started_at: null, finished_at: null })
      insertEvents({ ...queued, id: newId(), run_id: id }, { ...offered, id: newId(), run_id: id })
      commit.run()
      const took = performance.now() - started
      finish.run(id)
      if (++taken % 256 === 0) db.pragma('wal_checkpoint(PASSIVE)')
      return took
    }
    const timed = async (paced) => {
      for (let i = 0; i < warmup; i++) take()
      const times = []
      for (let i = 0; i < samples; i++) {
        if (paced) await pause()
        times.push(take())
      }
      return { p50: pct(times, 50), p99: pct(times, 99) }
    }
    return { paced: await timed(true), backToBack: await timed(false) }
  } finally {
    db.close()
  }
}

/**
 * The share of CPU time the host took from this virtual machine, between the call and the call
 * of the function it returns: steal time, from /proc/stat's `cpu` line (in ticks of 10 ms, over
 * all cores). Undefined where there is no /proc/stat.
 */
function stealMeter() {
  const read = () => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
      const ticks = fields.slice(1, 9).map(Number)
      return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] }
    } catch {
      return undefined
    }
  }
  const before = read()
  return () => {
    const after = read()
    if (!before || !after || after.total === before.total) return undefined
    return (after.steal - before.steal) / (after.total - before.total)
  }
}

/** One simulated agent: answers tests, takes every offer and finishes it at once. */
function connectAgent(base, machine, onOffer) {
  return new Promise((resolve, reject) => {
    void assertion(machine, `${base}/api/v1/agent`).then((token) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/agent/channel`, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      })
      let seq = 0
      const heartbeat = () =>
        ws.readyState === WebSocket.OPEN &&
        ws.send(JSON.stringify({ type: 'heartbeat', seq: ++seq, sessions: [], runningRuns: [] }))
      ws.on('open', () =>
        ws.send(
          JSON.stringify({
            type: 'hello',
            protocolVersions: [1],
            agentVersion: '0.1.0',
            hostname: 'bench',
            os: 'linux',
          }),
        ),
      )
      ws.on('error', reject)
      ws.on('message', (data) => {
        const at = performance.now()
        const mono = monotonicMs(at)
        const message = JSON.parse(data.toString())
        if (message.type === 'welcome') {
          heartbeat()
          // As often as the server asks, as the real agent does.
          ws.timer = setInterval(heartbeat, message.heartbeatIntervalMs)
          resolve(ws)
        } else if (message.type === 'connectionTest') {
          ws.send(
            JSON.stringify({
              type: 'connectionTestResult',
              requestId: message.requestId,
              ok: true,
              osAccount: 'bench',
            }),
          )
        } else if (message.type === 'runOffer') {
          onOffer(message.runId, at, mono)
          const now = new Date().toISOString()
          ws.send(JSON.stringify({ type: 'runAccepted', runId: message.runId }))
          ws.send(
            JSON.stringify({
              type: 'runFinished',
              runId: message.runId,
              status: 'Succeeded',
              exitCode: 0,
              outputs: {},
              error: null,
              osAccount: 'bench',
              startedAt: now,
              finishedAt: now,
            }),
          )
        }
      })
    })
  })
}

/**
 * One server on `databaseUrl` (SQLite when none): the latency phases when `floor` (a
 * `floorCommits()`) is given, timing its commits in the floor pairs; then throughput.
 */
async function benchServer(label, { databaseUrl, floor } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'desklink-bench-'))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const password = randomBytes(12).toString('base64url')
  const profiling = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${options.profile}`] : []
  const server = spawn(process.execPath, [...profiling, cli, 'server'], {
    env: {
      ...process.env,
      DESKLINK_DATA_DIR: dataDir,
      DESKLINK_PORT: String(port),
      DESKLINK_HOST: '127.0.0.1',
      DESKLINK_ADMIN_PASSWORD: password,
      DESKLINK_LOG_LEVEL: 'warn',
      ...(databaseUrl && { DESKLINK_DATABASE_URL: databaseUrl }),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const results = { label }
  // Only the latency phases place the processes; throughput runs where the OS puts them.
  const placement = floor ? corePlacement(server.pid) : undefined
  results.placement = placement
  const stop = async () => {
    // A profiled server must exit on its own to write its profile.
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill(options.profile ? 'SIGTERM' : 'SIGKILL')
    await exited
    try {
      if (!databaseUrl && results.many)
        results.statements = await takeStatementTimes(
          join(dataDir, 'desklink.db'),
          number('samples'),
          number('warmup'),
          pause,
        )
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/readyz`)).ok) break
      } catch {
        if (i > 100) throw new Error('the server did not start')
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    const token = await signIn(base, 'admin', password)
    const environmentId = (await api(base, token, 'GET', '/me')).roles[0].environmentId
    await api(base, token, 'PATCH', `/environments/${environmentId}/run-settings`, {
      maxQueuedRuns: 100_000,
      runsPerMinutePerConnection: 100_000,
    })
    const register = async (n, first) => {
      const machines = []
      await pool('register', n, 16, async (i) => {
        const { token: registration } = await api(
          base,
          token,
          'POST',
          `/environments/${environmentId}/registration-tokens`,
          {},
        )
        const identity = generateKeyPairSync('ed25519')
        const group = generateKeyPairSync('x25519')
        const registered = await api(base, undefined, 'POST', '/agent/register', {
          registrationToken: registration,
          name: `bench-${first + i}`,
          description: '',
          hostname: `bench-${first + i}`,
          os: 'linux',
          agentVersion: '0.1.0',
          identityPublicKey: identity.publicKey.export({ format: 'jwk' }).x,
          standaloneGroupPublicKey: group.publicKey.export({ format: 'jwk' }).x,
        })
        machines[i] = { id: registered.machineId, key: identity.privateKey }
      })
      return machines
    }
    // An offer, or who waits for it, by run: whichever comes first waits for the other.
    const offers = new Map()
    // During the paced samples, each offer notes whether it found this process on the
    // server's core (after its arrival was timed).
    let checkingCores = false
    const onOffer = (runId, at, mono) => {
      const offer = { at, mono, onServerCore: checkingCores ? onOneCore(server.pid) : undefined }
      const waiter = offers.get(runId)
      if (typeof waiter !== 'function') return void offers.set(runId, offer)
      offers.delete(runId)
      waiter(offer)
    }
    const offerOf = (runId) =>
      new Promise((resolve) => {
        const early = offers.get(runId)
        if (!early) return void offers.set(runId, resolve)
        offers.delete(runId)
        resolve(early)
      })
    const workers = await register(number('machines'), 0)
    const flow = await api(base, token, 'POST', `/environments/${environmentId}/desktop-flows`, {
      manifest: { name: 'noop', runtime: 'shell', entry: 'main.sh' },
      files: [{ path: 'main.sh', contentBase64: Buffer.from('true').toString('base64') }],
    })
    const sockets = []
    const connections = []
    /** Connects a machine's agent, with 64 slots and a connection to it. */
    const addWorker = async (machine) => {
      sockets.push(await connectAgent(base, machine, onOffer))
      await api(base, token, 'PATCH', `/machines/${machine.id}`, { settings: { slots: 64 } })
      const c = await api(base, token, 'POST', `/environments/${environmentId}/connections`, {
        name: `bench-${machine.id}`,
        target: { machineId: machine.id },
        username: 'bench',
        password: 'bench-password',
      })
      if (c.status !== 'Connected')
        throw new Error(`connection not connected: ${JSON.stringify(c)}`)
      connections.push(c.id)
    }
    // The first latency phase has only the first machine's agent connected.
    await addWorker(workers[0])
    const lean = leanClient(base, token, number('concurrency'))
    /**
     * One run started and timed: its id, how long admission took on the server, and when the
     * run was queued, on the machine's monotonic clock.
     */
    const timedRun = async (connectionId) => {
      const answer = await lean('POST', `/desktop-flows/${flow.id}/runs`, { connectionId })
      if (answer.status !== 202) throw new Error(`run refused: ${JSON.stringify(answer.body)}`)
      const timing = /admission;dur=([\d.]+), queued;desc="([\d.]+)"/.exec(
        answer.headers['server-timing'] ?? '',
      )
      if (!timing) throw new Error('no Server-Timing admission and queued figures in the answer')
      // When the offer was written to the agent's connection: there when the run's first
      // placement sent it before the answer.
      const sent = /offer-sent;desc="([\d.]+)"/.exec(answer.headers['server-timing'] ?? '')
      return {
        id: answer.body.id,
        admissionMs: Number(timing[1]),
        queuedMono: Number(timing[2]),
        offerSentMono: sent ? Number(sent[1]) : undefined,
      }
    }
    /** One run started, timed to its offer: `{ run, started, offer }`. */
    const runToOffer = async () => {
      const started = performance.now()
      const run = await timedRun(connections[0])
      return { run, started, offer: await offerOf(run.id) }
    }
    /** From the server's queued moment to the offer's arrival, checked against the bench's clock. */
    const queuedToOfferOf = ({ run, started, offer }) => {
      // The server queued the run `admissionMs` after the request reached it, so from there to
      // the offer is at most this (the request's transit to the server counted in it)...
      const upperBound = offer.at - started - run.admissionMs
      // ...and exactly this: both readings are of the machine's monotonic clock.
      const queuedToOffer = offer.mono - run.queuedMono
      if (queuedToOffer < 0 || queuedToOffer > upperBound + 0.01)
        throw new Error(`clocks disagree: ${queuedToOffer} ms, at most ${upperBound} ms`)
      return queuedToOffer
    }
    /** What the paced samples of one placement gather. */
    const newSamples = () => ({
      times: [],
      admissions: [],
      fromQueued: [],
      // The window in two: queued → offer handed to the connection (the server's part), and
      // from there to its arrival (the way to the agent: the socket write, the kernel, and
      // the wake-up of this process).
      serverParts: [],
      ways: [],
      // Samples whose answer had no `offer-sent` (its first pass outlasted the answer's wait).
      unsplit: 0,
      // Offers that arrived with this process last on the server's core, of those whose cores
      // could be read.
      onServerCore: 0,
      coresRead: 0,
      rtts: [],
      wakingRtts: [],
      commits: [],
    })
    /** One paced sample, after a pair of the floor's pings, into `into`. */
    const pacedSample = async (into) => {
      await pause()
      // The first ping wakes the server, as a run's request does before the run is queued
      // (outside the timed window). Then the floor's commit, after the same idle pause as the
      // server's commit of a run (what slows a commit is the pause, not how recently the
      // process woke: see the README); then the floor's round trip.
      const [waking] = await roundTrips(sockets[0], 1)
      into.wakingRtts.push(waking)
      into.commits.push(floor.once())
      const [awake] = await roundTrips(sockets[0], 1)
      into.rtts.push(awake)
      await pause()
      const sample = await runToOffer()
      into.times.push(sample.offer.at - sample.started)
      into.admissions.push(sample.run.admissionMs)
      into.fromQueued.push(queuedToOfferOf(sample))
      if (sample.offer.onServerCore !== undefined) into.coresRead += 1
      if (sample.offer.onServerCore === true) into.onServerCore += 1
      const sent = sample.run.offerSentMono
      if (sent === undefined) into.unsplit += 1
      else {
        into.serverParts.push(sent - sample.run.queuedMono)
        into.ways.push(sample.offer.mono - sent)
      }
    }
    const summary = (g) => ({
      p50: pct(g.times, 50),
      p99: pct(g.times, 99),
      admissionP50: pct(g.admissions, 50),
      queuedP50: pct(g.fromQueued, 50),
      queuedP99: pct(g.fromQueued, 99),
      serverPartP50: g.serverParts.length > 0 ? pct(g.serverParts, 50) : undefined,
      wayP50: g.ways.length > 0 ? pct(g.ways, 50) : undefined,
      unsplit: g.unsplit,
      onServerCore: g.coresRead > 0 ? g.onServerCore / g.coresRead : undefined,
      rttP50: pct(g.rtts, 50),
      rttP99: pct(g.rtts, 99),
      commitP50: pct(g.commits, 50),
      commitP99: pct(g.commits, 99),
      wakingRttP50: pct(g.wakingRtts, 50),
    })
    /**
     * A latency phase: warm-up; the paced samples, on separate cores where that is possible
     * and, for reference, where the OS puts both processes, the two in turns of a hundred
     * samples (which goes first alternates), each turn after some untimed runs in its
     * placement; and back to back, for reference, on separate cores.
     */
    const latency = async () => {
      // Without a placement, the only samples are where the OS puts both processes.
      const placements = placement ? ['separate', 'shared'] : ['shared']
      const gathered = Object.fromEntries(placements.map((p) => [p, newSamples()]))
      const samples = number('samples')
      try {
        placement?.separate()
        for (let i = 0; i < number('warmup'); i++) await runToOffer()
        const stolen = stealMeter()
        checkingCores = true
        for (let done = 0, turn = 0; done < samples; done += TURN_SAMPLES, turn++) {
          const order = turn % 2 === 0 ? placements : [...placements].reverse()
          for (const name of order) {
            placement?.[name]()
            for (let i = 0; i < SETTLING_RUNS; i++) await runToOffer()
            for (let i = done; i < Math.min(samples, done + TURN_SAMPLES); i++)
              await pacedSample(gathered[name])
          }
        }
        checkingCores = false
        const steal = stolen()
        placement?.separate()
        // For reference: back to back, each run started as soon as the last one's offer
        // arrived, so the server is still handling that run's acceptance and result when the
        // next comes.
        const backToBack = []
        for (let i = 0; i < samples; i++) backToBack.push(queuedToOfferOf(await runToOffer()))
        return {
          ...summary(gathered[placements[0]]),
          steal,
          shared: placement && summary(gathered.shared),
          backToBackP50: pct(backToBack, 50),
          backToBackP99: pct(backToBack, 99),
        }
      } finally {
        checkingCores = false
        try {
          placement?.shared()
        } catch {
          // The server is gone (the error that ended the phase says why): nothing to give back.
        }
      }
    }
    if (floor) results.one = { ...(await latency()), agents: sockets.length }
    for (const machine of workers.slice(1)) await addWorker(machine)
    if (floor) {
      const idle = await register(number('idle-agents'), workers.length)
      for (const machine of idle) sockets.push(await connectAgent(base, machine, onOffer))
      results.many = { ...(await latency()), agents: sockets.length }
    }
    const total = number('runs')
    // The baseline: the same number of the smallest authenticated API call, same client and
    // concurrency, on the same server. A run cannot go faster than one request.
    const meStarted = performance.now()
    await pool('me', total, number('concurrency'), async () => {
      const answer = await lean('GET', '/me')
      if (answer.status !== 200) throw new Error(`GET /me answered ${answer.status}`)
    })
    results.requestCeiling = total / ((performance.now() - meStarted) / 1000)
    const started = performance.now()
    const done = []
    await pool('runs', total, number('concurrency'), async (i) => {
      const run = await timedRun(connections[i % connections.length])
      done.push(offerOf(run.id))
    })
    await Promise.all(done)
    // Every run ended once the server has no run left queued or running.
    for (;;) {
      const open = await api(
        base,
        token,
        'GET',
        `/environments/${environmentId}/runs?status=Running`,
      )
      const queued = await api(
        base,
        token,
        'GET',
        `/environments/${environmentId}/runs?status=Queued`,
      )
      if (open.items.length === 0 && queued.items.length === 0) break
      await new Promise((r) => setTimeout(r, 20))
    }
    results.throughput = total / ((performance.now() - started) / 1000)
    for (const ws of sockets) {
      clearInterval(ws.timer)
      ws.terminate()
    }
    return results
  } finally {
    await stop()
  }
}

async function postgresDatabase(url) {
  const { default: pg } = await import('pg')
  const name = `desklink_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const target = new URL(url)
  target.pathname = `/${name}`
  return {
    url: target.toString(),
    async drop() {
      const again = new pg.Client({ connectionString: url })
      await again.connect()
      await again.query(`drop database if exists ${name} with (force)`)
      await again.end()
    },
  }
}

say('Desklink dispatch benchmark')
const floor = floorCommits()
let hotCommit
let sqlite
try {
  hotCommit = floor.backToBack(number('samples'), number('warmup'))
  const echo = await echoRoundTrips(number('samples'), number('warmup'))
  say(
    `for reference, not the floor: ws round trip to a bare echo server in a process of its own p50 ${ms(echo.p50)}, p99 ${ms(echo.p99)}`,
  )
  sqlite = await benchServer('SQLite', { floor })
} finally {
  floor.close()
}
const agentsOf = (r) => (r.agents === 1 ? '1 agent' : `${r.agents} agents`)
/** The window's p50 in its two parts, and how often the offer found the agents on the server's core. */
const parts = (r) =>
  (r.serverPartP50 === undefined
    ? 'no answer said when its offer was sent'
    : `p50 of its parts: queued → offer sent ${ms(r.serverPartP50)}, sent → arrived ${ms(r.wayP50)}` +
      (r.unsplit > 0 ? ` (${r.unsplit} samples without an offer-sent figure left out)` : '')) +
  "; offers that found the agents last on the server's core: " +
  (r.onServerCore === undefined ? 'unknown' : `${(100 * r.onServerCore).toFixed(0)}%`)
say(
  sqlite.placement
    ? `latency phases: the server on core ${sqlite.placement.serverCores}, the agents (this process) on core ${sqlite.placement.agentsCore}; ` +
        'for reference, paced samples also with both where the OS puts them, in turns of ' +
        `${TURN_SAMPLES} with those on separate cores`
    : 'latency phases: both processes where the OS puts them (separate cores need two cores, taskset, and leave to set affinity)',
)
for (const r of [sqlite.one, sqlite.many]) {
  const name = agentsOf(r)
  const floorMs = r.rttP50 + r.commitP50
  // How much the machine itself varies: the same two steps at their 99th percentile.
  const floorP99 = r.rttP99 + r.commitP99
  // The floor of earlier rounds, for comparison: the commit timed back to back instead.
  const hotFloor = r.rttP50 + hotCommit.p50
  // Two decimals: a ratio printed 3.0 could be just over the target.
  const times = (v) => `${(v / floorMs).toFixed(2)}× floor`
  const timesHot = (v) => `${(v / hotFloor).toFixed(2)}×`
  say(
    `floor, ${name}: ws round trip to the server ${ms(r.rttP50)} + SQLite commit ${ms(r.commitP50)} = ${ms(floorMs)}` +
      ` (the same at their p99: ${ms(floorP99)}, ${times(floorP99)};` +
      ` the round trip that woke the server: ${ms(r.wakingRttP50)};` +
      ` with the commit timed back to back, ${ms(hotCommit.p50)}: ${ms(hotFloor)})`,
  )
  say(
    `enqueue → offer, ${name}: p50 ${ms(r.queuedP50)} (${times(r.queuedP50)}, target ≤ ${TARGET.p50Ratio}×), ` +
      `p99 ${ms(r.queuedP99)} (${times(r.queuedP99)}, target ≤ ${TARGET.p99Ratio}×)` +
      `; ${parts(r)}` +
      (r.steal === undefined
        ? ''
        : `; the host took ${(100 * r.steal).toFixed(1)}% of CPU time meanwhile` +
          (r.shared ? " (both placements' samples)" : '')) +
      `; against the floor with the commit back to back: p50 ${timesHot(r.queuedP50)}, p99 ${timesHot(r.queuedP99)}`,
  )
  say(
    `request → offer, ${name} (admission included; admission p50 ${ms(r.admissionP50)}): p50 ${ms(r.p50)} (${times(r.p50)}), p99 ${ms(r.p99)} (${times(r.p99)})`,
  )
  say(
    `back to back, for reference (against the same floor): enqueue → offer, ${name}: p50 ${ms(r.backToBackP50)} (${times(r.backToBackP50)}), p99 ${ms(r.backToBackP99)} (${times(r.backToBackP99)})`,
  )
  if (r.shared) {
    // Against its own floor; and the latencies on separate cores against it too: its round
    // trip is the one that benefits from sharing a core, so a miss against it shows.
    const o = r.shared
    const sharedFloor = o.rttP50 + o.commitP50
    const timesShared = (v) => `${(v / sharedFloor).toFixed(2)}×`
    say(
      `for reference, where the OS puts both processes, ${name}: floor ${ms(o.rttP50)} + ${ms(o.commitP50)} = ${ms(sharedFloor)}` +
        ` (the round trip that woke the server: ${ms(o.wakingRttP50)});` +
        ` enqueue → offer p50 ${ms(o.queuedP50)} (${timesShared(o.queuedP50)} this floor), p99 ${ms(o.queuedP99)} (${timesShared(o.queuedP99)});` +
        ` ${parts(o)}; admission p50 ${ms(o.admissionP50)};` +
        ` on separate cores against this floor: p50 ${timesShared(r.queuedP50)}, p99 ${timesShared(r.queuedP99)}`,
    )
  }
}
if (sqlite.statements) {
  const { paced, backToBack } = sqlite.statements
  const ofFloor = [sqlite.one, sqlite.many]
    .map((r) => `${(paced.p50 / (r.rttP50 + r.commitP50)).toFixed(1)}× with ${agentsOf(r)}`)
    .join(', ')
  const ofCommit = [sqlite.one, sqlite.many]
    .map((r) => `${(paced.p50 / r.commitP50).toFixed(1)}× with ${agentsOf(r)}`)
    .join(', ')
  say(
    `for reference, not the floor: the statements storing a run that goes at once (begin, the run's insert, its two events' insert, commit), ` +
      `run directly on the server's SQLite file: paced p50 ${ms(paced.p50)} (${ofCommit} of the floor's commit; ` +
      `alone ${ofFloor} of the floor), p99 ${ms(paced.p99)}; back to back p50 ${ms(backToBack.p50)}, p99 ${ms(backToBack.p99)}`,
  )
}
const throughputLine = (label, r) =>
  `throughput, ${label}: ${r.throughput.toFixed(0)} no-op runs/s; baseline GET /me ${r.requestCeiling.toFixed(0)} requests/s (runs at ${((100 * r.throughput) / r.requestCeiling).toFixed(0)}% of it)`
say(`${throughputLine('SQLite', sqlite)} (target ≥ ${TARGET.sqliteRunsPerSecond} runs/s)`)
if (options.postgres) {
  const database = await postgresDatabase(options.postgres)
  try {
    const pgResult = await benchServer('PostgreSQL', { databaseUrl: database.url })
    say(throughputLine('PostgreSQL', pgResult))
  } finally {
    await database.drop()
  }
} else {
  say('throughput, PostgreSQL: skipped (pass --postgres URL or set DESKLINK_TEST_DATABASE_URL)')
}
