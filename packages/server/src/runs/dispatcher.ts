/**
 * The scheduler: places queued runs on machines, and follows them to their end. It is driven by
 * events only (a run queued, a heartbeat or session change, a machine connecting or leaving, a
 * run ending, a setting changing, a deadline falling due); no polling loop sets its latency.
 *
 * Exactly-once start: a run goes from `Queued` to `Running` on one machine in one conditional
 * update, then is offered to that machine alone. The machine journals it before it starts it,
 * answers `runAccepted`, and keeps its result until the server acknowledges it. A machine that
 * rejects an offer gives the run back to the queue. A machine that goes silent loses its runs
 * when their lease (three heartbeat intervals, renewed by each heartbeat that lists them) runs
 * out: they fail with `RunLeaseExpired`, and are never started twice.
 *
 * A pass works from memory: each target's queue (`queue-index.ts`), what each machine holds
 * (`machine-holdings.ts`), each target's machines (`target-members.ts`) and what each machine
 * can take now (`machine-pictures.ts`), read from the database on first use and then kept up to
 * date by the dispatcher's own changes. The database stays the truth: taking a run is a
 * conditional update whatever memory says. Why each queued run waits is kept by
 * `waiting-reasons.ts`; what a run's offer needs is read by `run-facts.ts`.
 *
 * @module
 */
import {
  type AgentRunFinished,
  type MachineSettings,
  type RunCode,
  type ServerMessage,
  type SessionInfo,
} from '@desklink/protocol'
import type { Kysely } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { Logger } from '../logging/index.ts'
import { type Database, prepareQuery, type WriteBatcher } from '../storage/index.ts'
import type { Clock } from '../system/index.ts'
import { createDeadlineTimer } from './deadline-timer.ts'
import { createFailedCommits } from './failed-commits.ts'
import { shownOutputs } from './flow-inputs.ts'
import { createMachineHoldings } from './machine-holdings.ts'
import { capacityOf, createMachinePictures } from './machine-pictures.ts'
import {
  type MachinePicture,
  place,
  type Refusal,
  refusedOnlyForSession,
  waitsOnlyForSession,
} from './placement.ts'
import { createQueueIndex, type PromisedPlace, WHOLE_QUEUE } from './queue-index.ts'
import {
  type ConnectionForRun,
  createRunFacts,
  type FlowVersionFacts,
  type Offer,
  offerOf,
} from './run-facts.ts'
import { deadlinesOf, type RecordedEvent, type RunRow, type RunStore } from './run-store.ts'
import { createTargetMembers } from './target-members.ts'
import { createWaitExplainer } from './wait-explainer.ts'
import { createWaitingReasons } from './waiting-reasons.ts'

/** How the dispatcher reaches machines and what it needs to know about them. */
export interface DispatchPorts {
  send(machineId: string, message: ServerMessage): boolean
  isConnected(machineId: string): boolean
  settingsOf(machineId: string): Promise<MachineSettings | undefined>
  /** What the machine needs to act as the connection's identity (sealed to the group). */
  credentialFor(run: RunRow, connection: ConnectionForRun): Promise<Offer['credential']>
  /** Whether the run owner may still use the target, read the flow and the credential. */
  runOwnerMayRun(run: RunRow, connection: ConnectionForRun): Promise<boolean>
  /** Called once per run, when it reaches its end. */
  onEnded(run: RunRow): void
}

/** How a run's first pass left it: the row, and the events the pass recorded, when known. */
export interface FirstPass {
  readonly run: RunRow
  /** Undefined when the pass did more than this server can tell without a read. */
  readonly recorded?: readonly RecordedEvent[]
  /** `performance.now()` when the run's offer was handed to its machine's connection. */
  readonly offerSentAt?: number
}

export interface RunError {
  readonly code: RunCode
  readonly message: string
  readonly details?: unknown
}

const LEASE_GRACE_MS = 5_000
/** How fresh a connection's stored last use is kept (a connection list shows it). */
const LAST_USE_PRECISION_MS = 1_000

/** A run placed on a machine in a pass, to be taken and offered with the others of the pass. */
interface PlannedOffer {
  readonly run: RunRow
  readonly machine: MachinePicture
  readonly connection: ConnectionForRun
  readonly message: Offer
  /** A run being admitted, not stored yet: stored already taken, with its `queued` event. */
  readonly admitted?: RecordedEvent
}

/** What the take of a pass stored. */
interface Taken {
  /** Each planned run's row, taken; undefined for one not taken. */
  readonly rows: readonly (RunRow | undefined)[]
  /** The connections whose last use it stored. */
  readonly stored: readonly string[]
  /** Runs not taken that are still queued (known only when the take failed to commit). */
  readonly stillQueued?: ReadonlySet<string>
  /** The take failed to commit and what it stored was read back: time passed since `at`. */
  readonly afterFailedCommit?: boolean
}

export function createDispatcher(deps: {
  db: Kysely<Database>
  store: RunStore
  writes: WriteBatcher
  ports: DispatchPorts
  clock: Clock
  logger: Logger
  leaseMs: number
}) {
  const { db, store, writes, ports, clock, logger } = deps
  const now = () => clock.now()
  const iso = (ms?: number) => new Date(ms ?? now().getTime()).toISOString()

  /** Machines that turned a run down, until their next heartbeat. */
  const rejectedBy = new Map<string, Map<string, Refusal>>()
  const passes = new Map<string, Promise<void>>()
  /** The pass of a group that is queued behind the running one and has not started yet. */
  const pendingPasses = new Map<string, Promise<void>>()
  let stopped = false
  /** The queues and what machines hold, in memory (rebuilt from the database as needed). */
  const queues = createQueueIndex((groupId) => store.queueHead(groupId, WHOLE_QUEUE))
  const holdings = createMachineHoldings((machineIds) => store.heldBy(machineIds))
  const machines = createMachinePictures({
    holdings,
    isConnected: (machineId) => ports.isConnected(machineId),
    settingsOf: (machineId) => ports.settingsOf(machineId),
  })
  const { connectionOf, versionOf, connectionAndVersionOf, groupOf, machinesOf, groupExists } =
    createRunFacts(db)
  const connectionUsed = prepareQuery(db, (q, a: { id: string; at: string }) =>
    q.updateTable('connections').set({ last_used_at: a.at }).where('id', '=', a.id),
  )
  const targetMembers = createTargetMembers(machinesOf)
  /**
   * When this server last stored each connection's last use. A connection's last use is
   * stored at most once a second: a burst of runs through it writes it once.
   */
  const lastUseStored = new Map<string, number>()
  const reasons = createWaitingReasons({ db, writes, queues, now: () => now().getTime(), logger })
  const whyWaiting = reasons.of
  /** A machine's start of a run, as `unstoredStarts` and `storingStarts` know it. */
  const startKey = (machineId: string, runId: string) => `${machineId} ${runId}`
  /**
   * Starts not stored yet, with their time: each waits for the rest of its turn, so that a
   * result the machine sent with it (a flow that ended at once) is stored with it, in one update.
   */
  const unstoredStarts = new Map<string, { at: number }>()
  /** Starts on their way to the database: a result of the run waits for its start to land. */
  const storingStarts = new Map<string, Promise<void>>()
  /** What writes whose commit failed stored after all (`failed-commits.ts`). */
  const failedCommits = createFailedCommits({
    store,
    logger,
    now: () => now().getTime(),
    leaseMs: deps.leaseMs,
    dueAt: (ms) => dueAt(ms),
    async giveBack(row, machineId) {
      const back = await requeue(row, machineId, 'requeued', {
        machineId,
        reason: 'offer not sent',
      })
      if (back) void kick(back.target_group_id)
    },
  })
  const { readBack } = failedCommits
  /** Runs whose admission awaits their first pass, and how that pass left them. */
  const firstPassOf = new Map<string, FirstPass | undefined>()
  /**
   * A credential that could not be had while its run was being admitted (a vault down, say):
   * by the run being admitted, until it joins its queue (`enqueued`), then by run id for its
   * first pass, which fails the run with that error instead of asking the store again. A store
   * that times out would otherwise hold the run for two timeouts, one after the other.
   */
  const credentialFailedAtAdmission = new WeakMap<RunRow, { error: unknown }>()
  const credentialFailedBeforePass = new Map<string, { error: unknown }>()

  /** Ends a run that is still in one of `from`; true when this call ended it. */
  async function end(
    run: RunRow,
    from: RunRow['status'] | readonly RunRow['status'][],
    status: 'Succeeded' | 'Failed' | 'Cancelled',
    changes: Partial<RunRow> & { error?: string | null },
    machineId?: string,
    /** An event of the run not stored yet (its start), recorded before the end's. */
    earlier?: RecordedEvent,
  ): Promise<boolean> {
    const at = iso()
    const final = await writes
      .write(async (trx) => {
        const within = store.within(trx)
        const ended = await within.move(
          run.id,
          from,
          { status, finished_at: at, lease_expires_at: null, ...changes },
          {
            at,
            kind: status.toLowerCase(),
            details: changes.error ? JSON.parse(changes.error) : undefined,
            ...(machineId !== undefined && { machineId }),
          },
          earlier,
        )
        // Owed in the commit that ends the run: a server stopped before it is made makes it
        // when it starts again.
        if (ended?.callback_url) await within.oweCallback(ended, at)
        return ended
      })
      .catch((error: unknown) =>
        readBack(run.id, error, (row) => row.status === status && row.finished_at === at),
      )
    reasons.forget(run.id)
    if (!final) {
      // No longer in that state: if it was queued, it left the queue some other way.
      // (A move bound to a machine can fail while the run is still queued: not that one.)
      if (machineId === undefined && (typeof from === 'string' ? [from] : from).includes('Queued'))
        queues.drop(run)
      return false
    }
    rejectedBy.delete(run.id)
    queues.drop(final)
    if (final.machine_id) holdings.remove(final.machine_id, final.id)
    if (firstPassOf.has(final.id)) firstPassOf.set(final.id, { run: final })
    ports.onEnded(final)
    // The row as it is now: the run may have been dispatched since the caller read it.
    if (status === 'Cancelled' && final.machine_id)
      ports.send(final.machine_id, { type: 'runCancel', runId: run.id })
    // The run freed its machine's slot, or left its queue: the queue is looked at again.
    void kick(final.target_group_id)
    return true
  }

  const startedEvent = (machineId: string, at: number): RecordedEvent => ({
    at: iso(at),
    kind: 'started',
    details: { machineId },
  })

  /** Stores a machine's start of a run (once: a start said again changes nothing). */
  async function storeStart(machineId: string, runId: string, at: number): Promise<void> {
    const started = await writes.write((trx) =>
      store
        .within(trx)
        .move(
          runId,
          'Running',
          { started_at: iso(at), lease_expires_at: iso(at + deps.leaseMs) },
          { ...startedEvent(machineId, at), machineId, unstarted: true },
        ),
    )
    if (!started) return
    holdings.add({ ...started, machine_id: machineId })
    // The run's timeout now counts from its start.
    dueAt(at + started.timeout_seconds * 1000 + LEASE_GRACE_MS)
  }

  const fail = (
    run: RunRow,
    from: RunRow['status'] | readonly RunRow['status'][],
    error: RunError,
    machineId?: string,
  ) => end(run, from, 'Failed', { error: JSON.stringify(error) }, machineId)

  /** What the machine will be sent, or undefined when the run failed on the way. */
  async function plan(
    run: RunRow,
    machine: MachinePicture,
    connection: ConnectionForRun,
    version: FlowVersionFacts | undefined,
  ): Promise<PlannedOffer | undefined> {
    if (!version) {
      await fail(run, 'Queued', {
        code: 'FlowNotFound',
        message: 'The desktop flow was deleted before the run started.',
      })
      return undefined
    }
    let credential
    try {
      const failed = credentialFailedBeforePass.get(run.id)
      credentialFailedBeforePass.delete(run.id)
      if (failed) throw failed.error
      credential = await ports.credentialFor(run, connection)
    } catch (error) {
      const coded = error instanceof AppError
      await fail(run, 'Queued', {
        code: coded ? error.code : 'CredentialUnavailable',
        message: coded ? error.message : 'The identity of the connection could not be obtained.',
      })
      if (!coded) logger.error({ err: error, runId: run.id }, 'credential for run failed')
      return undefined
    }
    return { run, machine, connection, message: offerOf(run, machine, version, credential) }
  }

  /**
   * Takes the runs of a pass (Queued → Running on their machine, each with its event, in one
   * transaction), then sends the offers: nothing is offered before it is stored. A run being
   * admitted (`admitted`) is inserted already taken instead, with its `queued` event.
   */
  async function offerAll(planned: readonly PlannedOffer[]): Promise<void> {
    if (planned.length === 0) return
    const at = now().getTime()
    const staleUse = new Set(
      planned
        .map((p) => p.connection.id)
        .filter((id) => at - (lastUseStored.get(id) ?? -Infinity) >= LAST_USE_PRECISION_MS),
    )
    const offered = (machineId: string): RecordedEvent => ({
      at: iso(at),
      kind: 'offered',
      details: { machineId },
    })
    const write = writes.write(async (trx) => {
      const within = store.within(trx)
      const rows: (RunRow | undefined)[] = []
      for (const { run, machine, connection, admitted } of planned) {
        const take = {
          status: 'Running',
          machine_id: machine.machineId,
          offered_at: iso(at),
          lease_expires_at: iso(at + deps.leaseMs),
          os_account: run.run_mode === 'attended' ? connection.os_account : run.os_account,
        } as const
        if (admitted) {
          const row: RunRow = { ...run, ...take }
          await within.insert(row)
          await within.eventPair(row, admitted, offered(machine.machineId))
          rows.push(row)
        } else rows.push(await within.move(run.id, 'Queued', take, offered(machine.machineId)))
      }
      const used = new Set(planned.filter((_, i) => rows[i]).map((p) => p.connection.id))
      const stored = [...used].filter((id) => staleUse.has(id))
      for (const id of stored) await connectionUsed.all({ id, at: iso(at) }, trx)
      return { rows, stored }
    })
    const taken: Taken = await write.catch(async (error: unknown) => ({
      ...(await failedCommits.takenAfterAll(planned, at, error)),
      stored: [],
      afterFailedCommit: true,
    }))
    if (lastUseStored.size >= 10_000) lastUseStored.clear()
    for (const id of taken.stored) lastUseStored.set(id, at)
    for (const [i, { run, machine, message }] of planned.entries()) {
      // Taken, or no longer queued: either way it left the queue.
      if (!taken.stillQueued?.has(run.id)) queues.drop(run)
      reasons.forget(run.id)
      const row = taken.rows[i]
      if (!row) continue
      holdings.add({ ...row, machine_id: machine.machineId })
      if (firstPassOf.has(row.id))
        firstPassOf.set(row.id, { run: row, recorded: [offered(machine.machineId)] })
      // Read back after a failed commit, a take may predate the machine's current connection:
      // that connection's first heartbeat may already have given the run back. It goes back.
      const stale =
        taken.afterFailedCommit === true && machines.connectedAfter(machine.machineId, at)
      // Read before the write: the socket write wakes the agent, which may take the core.
      const sendingAt = performance.now()
      if (!stale && ports.send(machine.machineId, message)) {
        const pass = firstPassOf.get(row.id)
        if (pass) firstPassOf.set(row.id, { ...pass, offerSentAt: sendingAt })
        continue
      }
      // The machine left in the meantime (or came back since): the offer never went out on the
      // connection the take was for, so the run goes back.
      await requeue(row, machine.machineId, 'requeued', {
        machineId: machine.machineId,
        reason: 'offer not sent',
      })
    }
    // The lease, or a timeout shorter than it.
    const shortest = Math.min(...planned.map((p) => p.run.timeout_seconds))
    dueAt(at + Math.min(deps.leaseMs, shortest * 1000 + LEASE_GRACE_MS))
  }

  /**
   * Gives a run its machine took but never started back to its queue, with the event that says
   * why (in one transaction); the row, when it did.
   */
  async function requeue(
    run: RunRow,
    machineId: string,
    kind: 'requeued' | 'rejected',
    details: Record<string, unknown>,
  ): Promise<RunRow | undefined> {
    const back = await writes
      .write((trx) =>
        store.within(trx).move(
          run.id,
          'Running',
          { status: 'Queued', machine_id: null, offered_at: null, lease_expires_at: null },
          // Still this offer, never started: a start or a later offer is never undone.
          {
            at: iso(),
            kind,
            details,
            machineId,
            unstarted: true,
            ...(run.offered_at !== null && { offeredAt: run.offered_at }),
          },
        ),
      )
      // Back in its queue either way: the index must hold it.
      .catch((error: unknown) => readBack(run.id, error, (row) => row.status === 'Queued'))
    if (back) {
      holdings.remove(machineId, run.id)
      queues.put(back)
      // Queued again: its queue deadline counts again (a run taken at admission never had it).
      dueAt(Date.parse(back.queue_deadline))
      if (firstPassOf.has(back.id)) firstPassOf.set(back.id, { run: back })
    }
    return back
  }

  /** One placement pass over a target's queue. */
  async function dispatchGroup(groupId: string): Promise<void> {
    // Nothing waits (the usual pass of an idle machine's heartbeat): nothing else to read.
    if ((await queues.head(groupId, 1)).length === 0) return
    const members = await targetMembers.of(groupId)
    if (members.length === 0) {
      // Deleted (a group, or a standalone machine with its own group), or left empty.
      const error: RunError = (await groupExists(groupId))
        ? {
            code: 'GroupIsEmpty',
            message: "The connection's target machine group has no machines.",
          }
        : {
            code: 'XrmMachineGroupNotFound',
            message: "The connection's target machine or machine group was deleted.",
          }
      for (const run of await queues.head(groupId, WHOLE_QUEUE)) await fail(run, 'Queued', error)
      return
    }
    const pictures = await machines.of(members)
    const extended = pictures.some((p) => p.settings.extendedQueuePrioritization)
    // Without extended prioritization a pass stops at the first run it cannot place, so it
    // never looks past what the machines can take now (plus that one run).
    const queue = await queues.head(groupId, extended ? WHOLE_QUEUE : capacityOf(pictures) + 1)
    if (queue.length === 0) return
    // What this pass read: each connection once, each flow version once.
    const connections = new Map<string, ConnectionForRun | undefined>()
    const versions = new Map<string, FlowVersionFacts | undefined>()
    const versionFor = async (id: string) => {
      if (!versions.has(id)) versions.set(id, await versionOf(id))
      return versions.get(id)
    }
    const planned: PlannedOffer[] = []
    for (const run of queue) {
      if (!connections.has(run.connection_id)) {
        const both = await connectionAndVersionOf(run)
        if (both) {
          connections.set(run.connection_id, both.connection)
          versions.set(run.flow_version_id, both.version)
        } else connections.set(run.connection_id, await connectionOf(run.connection_id))
      }
      const connection = connections.get(run.connection_id)
      if (!connection) {
        await fail(run, 'Queued', {
          code: 'ConnectionNotFound',
          message: 'The connection was deleted before the run started.',
        })
        continue
      }
      const excluded = rejectedBy.get(run.id) ?? new Map<string, Refusal>()
      const placed = place(
        pictures.filter((p) => !excluded.has(p.machineId)),
        { runMode: run.run_mode, osUser: connection.os_account },
      )
      const outcome: ReturnType<typeof place> =
        'machine' in placed ? placed : { refusals: [...placed.refusals, ...excluded.values()] }
      // The run owner's rights are checked when the run is about to go, not while it waits.
      // Refused, the run fails: no machine can change that, and waiting it would hold up the
      // runs behind it until its queue timeout.
      if ('machine' in outcome && !(await ports.runOwnerMayRun(run, connection))) {
        await fail(run, 'Queued', {
          code: 'RunOwnerLacksAccess',
          message:
            "The connection's run owner may no longer use the target, read the flow or read the credential.",
        })
        continue
      }
      if ('machine' in outcome) {
        const next = await plan(
          run,
          outcome.machine,
          connection,
          await versionFor(run.flow_version_id),
        )
        if (next) {
          planned.push(next)
          const p = outcome.machine as { -readonly [K in keyof MachinePicture]: MachinePicture[K] }
          const user = connection.os_account ?? ''
          if (run.run_mode === 'unattended') {
            p.unattendedRunning += 1
            p.unattendedUsers = [...p.unattendedUsers, user]
          } else p.attendedUsers = [...p.attendedUsers, user]
        }
        continue
      }
      // Judged by this server's picture alone: a machine that turned the offer down for the
      // session may see it change first, and is asked again after its next heartbeat.
      if (!extended && excluded.size === 0 && refusedOnlyForSession(outcome.refusals)) {
        await fail(run, 'Queued', {
          code: 'NoCandidateMachine',
          message:
            "No machine can run the desktop flow: on each one, the connection user's session rules it out (see subErrors). Sign the user in or out as they say, or turn on extended queue prioritization to have such runs wait for the session.",
          details: { subErrors: outcome.refusals },
        })
        continue
      }
      // Head-of-line blocking: nothing passes a waiting run (unless it turned out to be gone),
      // but with extended prioritization one that waits only for its user's session.
      const passable = extended && waitsOnlyForSession(outcome.refusals, run.run_mode)
      if (!(await reasons.record(run, outcome.refusals, !passable))) continue
      if (!passable) break
    }
    await offerAll(planned)
  }

  /**
   * Runs one pass per group at a time (and no admission's placement beside it: `inTurn`). A
   * kick during a pass asks for one more pass after it; kicks while that one still waits to
   * start join it (it will see everything they announce).
   */
  function kick(groupId: string): Promise<void> {
    if (stopped) return Promise.resolve()
    const waiting = pendingPasses.get(groupId)
    if (waiting) return waiting
    const previous = passes.get(groupId) ?? Promise.resolve()
    const next = previous
      .then(() => {
        pendingPasses.delete(groupId)
        return dispatchGroup(groupId)
      })
      .catch((error: unknown) => logger.error({ err: error, groupId }, 'dispatch pass failed'))
    pendingPasses.set(groupId, next)
    passes.set(groupId, next)
    void next.then(() => {
      if (passes.get(groupId) === next) passes.delete(groupId)
    })
    return next
  }

  /**
   * Runs `work` in the target's turn: after the pass under way and the one waiting to start.
   * Like a pass, it sees the target's machines while no other placement changes them.
   */
  function inTurn<T>(groupId: string, work: () => Promise<T>): Promise<T> {
    const mine = (passes.get(groupId) ?? Promise.resolve()).then(work)
    const settled = mine.then(
      () => undefined,
      () => undefined,
    )
    passes.set(groupId, settled)
    void settled.then(() => {
      if (passes.get(groupId) === settled) passes.delete(groupId)
    })
    return mine
  }

  /**
   * Stores a run being admitted already taken by a machine, when it can go at once: nothing
   * waits in its queue or is being admitted there, and a machine can take it now. Its row, its
   * `queued` and `offered` events and the take are then one commit instead of two, and the
   * offer goes out right after it. Undefined, with nothing stored, when the run has to join its
   * queue instead (then the pass that looks at it decides, and records why it waits or fails).
   * Sign-in connections always join the queue: their token is taken when the run is offered.
   * The caller holds a promised place in the queue (`promisePlace`) until the run is stored.
   */
  async function admitAtOnce(run: RunRow, queued: RecordedEvent): Promise<FirstPass | undefined> {
    const groupId = run.target_group_id
    // Not alone now: no need to wait for the target's turn to find that out.
    if (!(await queues.alone(groupId).catch(() => false))) return undefined
    return inTurn(groupId, async () => {
      let planned: PlannedOffer
      try {
        const ready = await readyAtOnce(run, queued)
        if (!ready) return undefined
        planned = ready
      } catch (error) {
        // The queue's pass reads again, and fails the run with the reason if it must.
        logger.warn({ err: error, runId: run.id }, 'placing a run at admission failed; it queues')
        return undefined
      }
      firstPassOf.set(run.id, undefined)
      try {
        await offerAll([planned])
      } catch (error) {
        // Not stored: admission fails with the reason. Stored, and what followed failed: the
        // run is admitted all the same, and goes on as any run whose offer went wrong.
        if (!firstPassOf.get(run.id)) {
          firstPassOf.delete(run.id)
          throw error
        }
        logger.error({ err: error, runId: run.id }, 'offering a run taken at admission failed')
      }
      const pass = firstPassOf.get(run.id)
      firstPassOf.delete(run.id)
      return pass
    })
  }

  /** The offer of a run being admitted, when it can go at once; undefined when it must queue. */
  async function readyAtOnce(
    run: RunRow,
    queued: RecordedEvent,
  ): Promise<PlannedOffer | undefined> {
    const groupId = run.target_group_id
    if (stopped || !(await queues.alone(groupId))) return undefined
    const both = await connectionAndVersionOf(run)
    if (!both || both.connection.type === 'signIn') return undefined
    const { connection, version } = both
    const pictures = await machines.of(await targetMembers.of(groupId))
    const placed = place(pictures, { runMode: run.run_mode, osUser: connection.os_account })
    if (!('machine' in placed) || !(await ports.runOwnerMayRun(run, connection))) return undefined
    let credential
    try {
      credential = await ports.credentialFor(run, connection)
    } catch (error) {
      // The run joins its queue, and its first pass fails it with this error (`plan`).
      credentialFailedAtAdmission.set(run, { error })
      return undefined
    }
    const message = offerOf(run, placed.machine, version, credential)
    return { run, machine: placed.machine, connection, message, admitted: queued }
  }

  /**
   * The target of a machine, from memory when a read since the last change of machines saw it.
   * Otherwise read, with the target's machines: the machine's next heartbeats find it in memory.
   */
  async function targetOf(machineId: string): Promise<string | undefined> {
    const known = targetMembers.groupOf(machineId)
    if (known) return known
    const groupId = await groupOf(machineId)
    if (groupId) await targetMembers.of(groupId)
    return groupId
  }

  const { reasonsOf } = createWaitExplainer({
    queues,
    machines,
    targetMembers,
    connectionOf,
    rejectedBy,
    whyWaiting,
  })

  async function expire(): Promise<void> {
    const at = now().getTime()
    const due = await store.pastQueueDeadline(iso(at))
    // Each one's reasons before any fails: a run behind another that times out with it was
    // held up by it, which it no longer says once that one has left the queue.
    const reasons: Refusal[][] = []
    for (const run of due) reasons.push((await reasonsOf(run)).machines)
    for (const [i, run] of due.entries()) {
      const refusals = reasons[i]
      await fail(run, 'Queued', {
        code: 'NoCandidateMachine',
        message: 'No machine able to run the desktop flow has been found.',
        details: { subErrors: refusals },
      })
    }
    for (const due of await store.runningDeadlines()) {
      const soon = deadlinesOf(due, LEASE_GRACE_MS)
      if (!(soon.timesOutAt <= at) && !(soon.leaseEndsAt <= at)) continue
      // Read whole only when due, as it is now: most running runs are not.
      const run = await store.byId(due.id)
      if (run?.status !== 'Running') continue
      const { leaseEndsAt, timesOutAt } = deadlinesOf(run, LEASE_GRACE_MS)
      if (timesOutAt <= at) {
        if (
          await fail(run, 'Running', {
            code: 'DesktopFlowsActionTimeout',
            message: `The run did not end within its timeout of ${run.timeout_seconds} s.`,
          })
        )
          ports.send(run.machine_id ?? '', { type: 'runCancel', runId: run.id })
      } else if (leaseEndsAt <= at) {
        // Should the machine come back with it, it stops: the run was given up.
        ports.send(run.machine_id ?? '', { type: 'runCancel', runId: run.id })
        await fail(run, 'Running', {
          code: 'RunLeaseExpired',
          message:
            'The machine stopped reporting the run (its agent stopped, crashed or lost the network) and the run was given up.',
          details: { machineId: run.machine_id },
        })
      }
    }
  }

  const deadlines = createDeadlineTimer({
    nextDeadline: () => store.nextDeadline(LEASE_GRACE_MS),
    onDue: expire,
    now: () => now().getTime(),
    logger,
  })
  const dueAt = (ms: number) => deadlines.dueAt(ms)

  return {
    kick,

    /** At start: runs that were going on get a fresh lease (their machines reconnect), queues a pass. */
    async start(): Promise<void> {
      const until = iso(now().getTime() + deps.leaseMs + LEASE_GRACE_MS)
      await store.renewAllLeases(until)
      for (const groupId of await store.groupsWithQueuedRuns()) void kick(groupId)
      deadlines.start()
    },

    /**
     * A run joined its queue. Settles when the pass that looks at it ended, with the run as it
     * then is: taken, ended, or still waiting (with that pass's reasons); undefined when that
     * is not known without a read.
     */
    async enqueued(run: RunRow): Promise<FirstPass | undefined> {
      const failed = credentialFailedAtAdmission.get(run)
      credentialFailedAtAdmission.delete(run)
      if (failed) credentialFailedBeforePass.set(run.id, failed)
      queues.put(run)
      firstPassOf.set(run.id, undefined)
      dueAt(Date.parse(run.queue_deadline))
      try {
        await kick(run.target_group_id)
        const waiting = queues.known(run)
        return firstPassOf.get(run.id) ?? (waiting && { run: waiting, recorded: [] })
      } finally {
        firstPassOf.delete(run.id)
        // Its first pass did not place it: a later one asks the store afresh.
        credentialFailedBeforePass.delete(run.id)
      }
    },

    admitAtOnce,

    /**
     * A run found again (a request retried with its idempotency key): a queued one is made
     * sure to be in its queue. A first request whose commit answer was lost may have stored it
     * without queuing it here.
     */
    found(run: RunRow): void {
      if (run.status !== 'Queued' || queues.known(run)) return
      queues.put(run)
      dueAt(Date.parse(run.queue_deadline))
      void kick(run.target_group_id)
    },

    /** Whether a target has machines (it may have none, and then nothing can run there). */
    async hasMachines(groupId: string): Promise<boolean> {
      return (await targetMembers.of(groupId)).length > 0
    },

    /** A queued run changed its place (priority, moved to top or back): its queue is looked at again. */
    reordered(run: RunRow): Promise<void> {
      // The stored row may not have the reasons yet (a run's first second): they carry over.
      queues.reorder({ ...run, refusals: whyWaiting(run) })
      return kick(run.target_group_id)
    },

    /**
     * A place in a target's queue for a run being admitted (see the queue index); release it
     * once `enqueued` queued the run, or when admission gives up.
     */
    promisePlace: (groupId: string, max: number): Promise<PromisedPlace | undefined> =>
      queues.promisePlace(groupId, max),

    /**
     * Settings of a machine or its group changed, or it joined or left a group: its queue is
     * looked at again, and so is the queue of the target it `left` (it may have been its last
     * machine: the runs there then fail at once, `GroupIsEmpty`, instead of waiting out their
     * queue timeout).
     */
    async machineChanged(machineId: string, left?: string): Promise<void> {
      machines.settingsChanged(machineId)
      targetMembers.dropAll()
      const groupId = await groupOf(machineId)
      if (groupId) void kick(groupId)
      if (left !== undefined && left !== groupId) void kick(left)
    },

    /** A machine was deleted (or replaced by a new registration): its targets' queues too. */
    machineDeleted(machineId: string, targets: readonly string[]): void {
      machines.settingsChanged(machineId)
      targetMembers.dropAll()
      holdings.forget(machineId)
      for (const groupId of new Set(targets)) void kick(groupId)
    },

    machineConnected(machineId: string): void {
      machines.connected(machineId, iso())
      targetMembers.dropAll()
    },

    async machineDisconnected(machineId: string): Promise<void> {
      machines.disconnected(machineId)
      targetMembers.dropAll()
      const groupId = await groupOf(machineId)
      if (groupId) void kick(groupId)
    },

    async heartbeat(
      machineId: string,
      sessions: readonly SessionInfo[],
      runningRuns: readonly string[],
    ): Promise<void> {
      machines.sessions(machineId, sessions)
      // What the machine holds is read again unless it says the same: drift lasts one
      // heartbeat at most, and an idle machine's heartbeat reads nothing.
      if (!holdings.agrees(machineId, runningRuns)) holdings.forget(machineId)
      for (const [runId, refusals] of rejectedBy) {
        refusals.delete(machineId)
        if (refusals.size === 0) rejectedBy.delete(runId)
      }
      await store.renewLeases(machineId, runningRuns, iso(now().getTime() + deps.leaseMs))
      const settled = machines.settled(machineId)
      if (settled) {
        // The agent sent its journaled results before this heartbeat: a run it was offered
        // but does not hold never reached it (or it turned it down), so it goes back to the
        // queue; a run it started but no longer holds was lost with it.
        const since = settled.since ?? iso()
        for (const run of await store.onMachine(machineId)) {
          // Offers made on this connection are answered on it; only older ones are in doubt.
          if (runningRuns.includes(run.id) || (run.offered_at ?? '') >= since) continue
          if (run.started_at === null) {
            await requeue(run, machineId, 'requeued', { machineId, reason: 'offer not received' })
          } else {
            await fail(
              run,
              'Running',
              {
                code: 'RunLeaseExpired',
                message: 'The machine reconnected without the run; it did not finish.',
                details: { machineId },
              },
              machineId,
            )
          }
        }
      }
      const groupId = await targetOf(machineId)
      if (groupId) void kick(groupId)
    },

    async accepted(machineId: string, runId: string): Promise<void> {
      const key = startKey(machineId, runId)
      // Said again while the first is being stored: the first counts.
      if (unstoredStarts.has(key) || storingStarts.has(key)) return
      const start = { at: now().getTime() }
      unstoredStarts.set(key, start)
      // The rest of the turn: a result that came with the acceptance takes it along.
      await new Promise((resolve) => setImmediate(resolve))
      if (unstoredStarts.get(key) !== start) return
      unstoredStarts.delete(key)
      // Stopping: not stored; the machine's result, when it comes, says when the run started.
      if (stopped) return
      const storing = storeStart(machineId, runId, start.at).finally(() =>
        storingStarts.delete(key),
      )
      storingStarts.set(key, storing)
      await storing
    },

    async rejected(machineId: string, runId: string, code: string, reason: string): Promise<void> {
      const run = await store.byId(runId)
      if (!run || run.started_at !== null) return
      const name =
        (
          await db
            .selectFrom('machines')
            .select('name')
            .where('id', '=', machineId)
            .executeTakeFirst()
        )?.name ?? machineId
      const refusal = { machineId, machineName: name, code, reason }
      // Noted before the run is back in its queue, so no pass offers it to this machine again.
      const refusals = rejectedBy.get(runId) ?? new Map<string, Refusal>()
      refusals.set(machineId, refusal)
      rejectedBy.set(runId, refusals)
      if (await requeue(run, machineId, 'rejected', refusal)) {
        void kick(run.target_group_id)
        return
      }
      // Not given back (it ended, or is not this machine's): the note goes.
      refusals.delete(machineId)
      if (refusals.size === 0) rejectedBy.delete(runId)
    },

    /** A machine reports a run's end; true when it is stored (it is acknowledged either way). */
    async finished(machineId: string, result: AgentRunFinished): Promise<void> {
      const key = startKey(machineId, result.runId)
      // Taken before anything else: accepted in this same turn and not stored yet, the start
      // is stored with the end, in one update.
      const unstored = unstoredStarts.get(key)
      unstoredStarts.delete(key)
      // A start on its way to the database lands first, so the row read next has it.
      await storingStarts.get(key)?.catch(() => undefined)
      const run = holdings.rowOf(machineId, result.runId) ?? (await store.byId(result.runId))
      if (!run || run.machine_id !== machineId) return
      const manifest = (await versionOf(run.flow_version_id))?.manifest
      const outputs = manifest ? shownOutputs(manifest, result.outputs) : null
      const startedAt = run.started_at === null ? unstored?.at : undefined
      try {
        await end(
          run,
          'Running',
          result.status,
          {
            started_at:
              run.started_at ?? (startedAt === undefined ? result.startedAt : iso(startedAt)),
            exit_code: result.exitCode,
            os_account: result.osAccount ?? run.os_account,
            outputs: outputs && JSON.stringify(outputs),
            error: result.error && JSON.stringify(result.error),
          },
          machineId,
          startedAt === undefined ? undefined : startedEvent(machineId, startedAt),
        )
      } catch (error) {
        // The end was not stored, or its commit failed and it could not be read back (the
        // machine sends it again, unacknowledged): the start it took is stored on its own.
        if (startedAt !== undefined)
          storeStart(machineId, run.id, startedAt).catch((failed: unknown) =>
            logger.error({ err: failed, runId: run.id }, 'storing a run start failed'),
          )
        throw error
      }
    },

    /** Cancels a queued or running run; false when it had already ended. */
    async cancel(run: RunRow, reason: string): Promise<boolean> {
      const error = JSON.stringify({ code: 'Cancelled', message: reason })
      if (await end(run, 'Queued', 'Cancelled', { error })) return true
      return end(run, 'Running', 'Cancelled', { error })
    },

    /** The queue position and the current reasons, for a queued run. */
    async waiting(
      run: RunRow,
    ): Promise<{ position: number; machines: Refusal[]; blockedBy: string | null } | null> {
      if (run.status !== 'Queued') return null
      // Not in the index while it is being taken: its place is then counted in the database.
      const position = (await queues.positionOf(run)) ?? (await store.positionOf(run))
      return { position, ...(await reasonsOf(run)) }
    },

    stop(): void {
      stopped = true
      failedCommits.stop()
      deadlines.stop()
      reasons.stop()
    },
  }
}

export type Dispatcher = ReturnType<typeof createDispatcher>
