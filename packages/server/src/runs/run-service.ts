/**
 * The Run desktop flow action: admission (everything checked before anything is queued, each
 * refusal with the reference's code), then the queue; and what callers can do with their runs
 * afterwards: read them (with the reason a queued run waits), change priority, move to top,
 * cancel, cancel by parent.
 *
 * @module
 */
import {
  type CreateRunRequest,
  type FlowManifest,
  NO_INPUTS,
  RUN_SETTINGS_DEFAULTS,
  type RunSettings,
  sealToGroup,
} from '@desklink/protocol'
import type { Kysely } from 'kysely'

import type { AuditLog } from '../audit/audit-log.ts'
import type { ConnectionService } from '../connections/connection-service.ts'
import { AppError } from '../errors/index.ts'
import type { FlowRow } from '../flows/flow-service.ts'
import type { FlowService } from '../flows/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { Access, MachineAccess } from '../machines/machine-access.ts'
import { type Database, prepareQuery, type WriteBatcher } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import { callbackUrlProblem } from './callbacks.ts'
import { createConnectionThrottle } from './connection-throttle.ts'
import type { Dispatcher, FirstPass } from './dispatcher.ts'
import { checkInputs } from './flow-inputs.ts'
import { assertSameRequest } from './idempotent-retry.ts'
import type { PromisedPlace } from './queue-index.ts'
import {
  PRIORITY_RANK,
  queueRankOf,
  type RunOwnerSubject,
  type RunRow,
  type RunStore,
} from './run-store.ts'

/** What the answer to a new run shows, known without reading it back. */
export interface KnownRunFacts {
  readonly flowName: string
  readonly flowVersion: number
  /** The run's events so far, when no read is needed to know them. */
  readonly events?: readonly { at: string; kind: string; details?: unknown }[] | undefined
}

/** A run admitted (or found again for a retried idempotency key). */
export interface AdmittedRun {
  readonly run: RunRow
  /** False for an idempotent retry: `run` is the first request's. */
  readonly created: boolean
  /**
   * `performance.now()` when the run joined the queue: once stored queued, or, for a run that
   * went at once, when admission handed it over to be placed and stored already taken.
   */
  readonly queuedAt?: number
  /** Settles when the dispatcher's first look at the run (at admission, or in a pass) ended. */
  readonly firstPass?: Promise<FirstPass | undefined>
  readonly known?: KnownRunFacts
}

/** What admission already read when it checks the run owner. */
export interface KnownAtAdmission {
  readonly caller?: Principal
  readonly flow?: FlowRow
}

/**
 * How long an environment's run settings are used as read. A change made through this server
 * applies at once; one made through another replica, within this time.
 */
const SETTINGS_FRESH_MS = 2_000

/** Access to a target that manages its queue. */
const MANAGES: readonly Access[] = ['coOwner', 'owner', 'admin']

/** Who a principal is to a run (`relationTo`). */
interface RunRelation {
  /** A tenant or environment administrator. */
  readonly admin: boolean
  /** The run's caller or its run owner. */
  readonly requester: boolean
  readonly ownsConnection: boolean
  /** An administrator, or an owner or co-owner of the run's target. */
  readonly manager: boolean
  /** An administrator, or the owner of the run's target (moves runs to the top). */
  readonly ownsTarget: boolean
}

/** What a list of runs may be narrowed to. */
interface RunFilter {
  status?: string | undefined
  parentRunId?: string | undefined
  flowId?: string | undefined
  connectionId?: string | undefined
  /** The newest this many; 500 at most. */
  limit?: number | undefined
}

export function createRunService(deps: {
  db: Kysely<Database>
  store: RunStore
  writes: WriteBatcher
  dispatcher: Dispatcher
  flows: FlowService
  connections: ConnectionService
  access: MachineAccess
  /** The principal's access to a run target (a machine's own group, or a machine group). */
  targetAccess: (principal: Principal, groupId: string) => Promise<Access | undefined>
  /** The targets of an environment whose queues the principal manages (co-owner or more). */
  managedTargets: (principal: Principal, environmentId: string) => Promise<string[]>
  /** Whether a principal (the run owner) may run through the connection now. */
  runOwnerMayRun: (run: RunOwnerSubject, known: KnownAtAdmission) => Promise<boolean>
  /** Keeps a sign-in token minted at request time for the run; undefined forgets it. */
  presetSignInToken: (
    runId: string,
    token: { accessToken: string; expiresAt: Date } | undefined,
  ) => void
  audit: AuditLog
  /** Internal hosts or addresses callbacks may go to (`DESKLINK_CALLBACK_ALLOWED_HOSTS`). */
  callbackAllowedHosts: readonly string[]
  clock: Clock
  newId: IdGenerator
}) {
  const { db, store, dispatcher } = deps
  const waiters = new Map<string, ((run: RunRow) => void)[]>()
  /** Run settings per environment, as read moments ago: every admission needs them. */
  const settingsCache = new Map<string, { settings: RunSettings; readAt: number }>()
  // Every run request reads its target group (and the key its inputs are sealed to).
  const groupOf = prepareQuery(
    db,
    (q, a: { tenantId: string; id: string }) =>
      q
        .selectFrom('machine_groups')
        .select(['id', 'public_key'])
        .where('tenant_id', '=', a.tenantId)
        .where('id', '=', a.id),
    { cached: true },
  )
  const throttle = createConnectionThrottle(async (connectionId, sinceMs) =>
    (await store.requestTimes(connectionId, new Date(sinceMs).toISOString())).map(Date.parse),
  )

  async function settingsOf(environmentId: string): Promise<RunSettings> {
    const nowMs = deps.clock.now().getTime()
    const cached = settingsCache.get(environmentId)
    if (cached && nowMs - cached.readAt < SETTINGS_FRESH_MS) return cached.settings
    const row = await db
      .selectFrom('environments')
      .select('run_settings')
      .where('id', '=', environmentId)
      .executeTakeFirst()
    const overrides = row?.run_settings
      ? (JSON.parse(row.run_settings) as Partial<RunSettings>)
      : {}
    const settings = { ...RUN_SETTINGS_DEFAULTS, ...overrides }
    settingsCache.set(environmentId, { settings, readAt: nowMs })
    return settings
  }

  /**
   * Who someone is to a run (reference §2.11–2.12). Its caller, its run owner and its
   * connection's owner see it and may cancel it; the caller and the run owner may change its
   * priority. Whoever manages its target (co-owner or owner of the machine or group) sees the
   * queue and changes priorities; only its owner moves a run to the top and back, as only an
   * owner may put one run ahead of every priority. Administrators may do everything. Anyone
   * else does not see the run at all.
   */
  async function relationTo(principal: Principal, run: RunRow): Promise<RunRelation> {
    const requester = requested(principal, run)
    const ownsConnection = run.connection_owner_id === principal.id
    const admin = await isAdminIn(principal, run.environment_id)
    const access = admin ? 'admin' : await deps.targetAccess(principal, run.target_group_id)
    const manager = MANAGES.includes(access ?? 'user')
    const ownsTarget = access === 'owner' || access === 'admin'
    return { admin, requester, ownsConnection, manager, ownsTarget }
  }

  /**
   * A refusal of what someone may see but not do to a run: audited (architecture §11), and
   * the error to throw. Refusals of runs they may not see are 404s, which say nothing.
   */
  async function refused(
    principal: Principal,
    run: RunRow,
    action: string,
    error: { message: string; details?: Record<string, unknown> },
  ): Promise<AppError> {
    await deps.audit.record({
      principal,
      environmentId: run.environment_id,
      action,
      targetType: 'run',
      targetId: run.id,
      outcome: 'denied',
      ...(error.details && { details: error.details }),
    })
    return new AppError('Forbidden', error)
  }

  /** A tenant administrator, or an administrator of the environment. */
  async function isAdminIn(principal: Principal, environmentId: string): Promise<boolean> {
    return (
      principal.isTenantAdmin ||
      (await deps.access.rolesIn(principal, environmentId)).includes('EnvironmentAdmin')
    )
  }

  /**
   * The runs of an environment the principal may see (`relationTo`), newest first, and whether
   * it sees them as an administrator.
   */
  async function runsSeenBy(
    principal: Principal,
    environmentId: string,
    filter: RunFilter & {
      /** Only runs not ended (queued or running), however many: no cap of 500. */
      unended?: boolean
    },
  ) {
    await deps.access.assertEnvironmentVisible(principal, environmentId)
    const admin = await isAdminIn(principal, environmentId)
    let query = db
      .selectFrom('runs')
      .selectAll()
      .where('tenant_id', '=', principal.tenant.id)
      .where('environment_id', '=', environmentId)
    if (!admin) {
      const managed = await deps.managedTargets(principal, environmentId)
      query = query.where((eb) =>
        eb.or([
          eb('caller_id', '=', principal.id),
          eb('run_owner_id', '=', principal.id),
          eb('connection_owner_id', '=', principal.id),
          ...(managed.length > 0 ? [eb('target_group_id', 'in', managed)] : []),
        ]),
      )
    }
    if (filter.status) query = query.where('status', '=', filter.status as RunRow['status'])
    if (filter.parentRunId) query = query.where('parent_run_id', '=', filter.parentRunId)
    if (filter.flowId) query = query.where('flow_id', '=', filter.flowId)
    if (filter.connectionId) query = query.where('connection_id', '=', filter.connectionId)
    if (filter.unended) query = query.where('status', 'in', ['Queued', 'Running'])
    else query = query.limit(filter.limit ?? 500)
    return { admin, runs: await query.orderBy('requested_at', 'desc').execute() }
  }

  /** The run's caller or run owner. */
  const requested = (principal: Principal, run: RunRow) =>
    (principal.type === run.caller_type && principal.id === run.caller_id) ||
    (principal.type === run.run_owner_type && principal.id === run.run_owner_id)
  /** The run's caller, run owner or connection owner: they see it without reading rights. */
  const requestedOrConnected = (principal: Principal, run: RunRow) =>
    requested(principal, run) || run.connection_owner_id === principal.id

  const sees = (r: RunRelation) => r.requester || r.ownsConnection || r.manager

  /**
   * Whether the principal still has a role in the run's environment. Whoever lost every role
   * there sees none of its runs, not even those they started: as if they did not exist.
   */
  const inItsEnvironment = async (principal: Principal, run: RunRow): Promise<boolean> =>
    principal.isTenantAdmin || (await deps.access.rolesIn(principal, run.environment_id)).length > 0

  /** The run, when the principal still has a role in its environment (`inItsEnvironment`). */
  async function findInItsEnvironment(
    principal: Principal,
    id: string,
  ): Promise<RunRow | undefined> {
    const run = await store.find(principal.tenant.id, id)
    return run && (await inItsEnvironment(principal, run)) ? run : undefined
  }

  async function find(principal: Principal, id: string) {
    const run = await findInItsEnvironment(principal, id)
    const relation = run && (await relationTo(principal, run))
    if (!run || !relation || !sees(relation)) throw new AppError('ResourceNotFound')
    return { run, relation }
  }

  /** The run, if the principal may see it (`relationTo`). */
  async function visible(principal: Principal, id: string): Promise<RunRow> {
    const run = await findInItsEnvironment(principal, id)
    if (!run) throw new AppError('ResourceNotFound')
    // Most reads are by its caller, run owner or connection owner polling it: answered
    // without reading rights.
    if (requestedOrConnected(principal, run)) return run
    if (!sees(await relationTo(principal, run))) throw new AppError('ResourceNotFound')
    return run
  }

  return {
    settingsOf,

    async visibleSettings(principal: Principal, environmentId: string) {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      return settingsOf(environmentId)
    },

    async updateSettings(
      principal: Principal,
      environmentId: string,
      changes: Partial<RunSettings>,
    ) {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      if (!(await isAdminIn(principal, environmentId)))
        throw new AppError('Forbidden', { details: { requiredRole: 'EnvironmentAdmin' } })
      const next = { ...(await settingsOf(environmentId)), ...changes }
      await db
        .updateTable('environments')
        .set({ run_settings: JSON.stringify(next) })
        .where('id', '=', environmentId)
        .execute()
      settingsCache.delete(environmentId)
      await deps.audit.record({
        principal,
        environmentId,
        action: 'environment.runSettings',
        targetType: 'environment',
        targetId: environmentId,
        outcome: 'success',
        details: changes,
      })
      return next
    },

    /** Admits a run or refuses it with a coded error; `created` is false for an idempotent retry. */
    async create(
      principal: Principal,
      flowId: string,
      request: CreateRunRequest,
    ): Promise<AdmittedRun> {
      const retried = async () => {
        if (request.idempotencyKey === undefined) return undefined
        const found = await store.byIdempotencyKey(
          principal.tenant.id,
          principal.id,
          request.idempotencyKey,
        )
        if (!found) return undefined
        // Someone with no role left in its environment sees none of its runs, retried or not.
        if (!(await inItsEnvironment(principal, found))) throw new AppError('ResourceNotFound')
        await assertSameRequest(found, flowId, request, async () => {
          const version = await db
            .selectFrom('flow_versions')
            .select('manifest')
            .where('id', '=', found.flow_version_id)
            .executeTakeFirst()
          return version && (JSON.parse(version.manifest) as FlowManifest)
        })
        dispatcher.found(found)
        return found
      }
      const earlier = await retried()
      if (earlier) return { run: earlier, created: false }
      const { flow, version } = await deps.flows.view(principal, flowId)
      const { row: connection } = await deps.connections.forUse(principal, request.connectionId)
      if (connection.environment_id !== flow.environment_id) {
        throw new AppError('InvalidRequestBody', {
          message: 'The connection and the flow are in different environments.',
          details: { field: 'connectionId' },
        })
      }
      const callbackProblem =
        request.callbackUrl && callbackUrlProblem(request.callbackUrl, deps.callbackAllowedHosts)
      if (callbackProblem)
        throw new AppError('InvalidRequestBody', {
          message: callbackProblem,
          details: { field: 'callbackUrl' },
        })
      if (connection.type === 'signIn' && request.runMode !== 'attended')
        throw new AppError('RunModeNotAllowedForConnection')
      const manifest = JSON.parse(version.manifest) as FlowManifest
      const settings = await settingsOf(flow.environment_id)
      const inputs = checkInputs(manifest, request.inputs, settings.maxRunInputBytes)
      if (
        request.timeoutSeconds !== undefined &&
        request.timeoutSeconds > settings.maxRunTimeoutSeconds
      )
        throw new AppError('InvalidRequestBody', {
          message: `The run timeout is at most ${settings.maxRunTimeoutSeconds} s in this environment.`,
          details: { field: 'timeoutSeconds', max: settings.maxRunTimeoutSeconds },
        })

      // The throttle, then the target (reference §3.2, steps 3 and 4). The throttle's slot is
      // kept once the run is stored, and given back otherwise; the place in the queue is held
      // until the run is in the queue's count (or stored already taken), or admission gave up.
      const nowMs = deps.clock.now().getTime()
      const limit = settings.runsPerMinutePerConnection
      const taken = await throttle.take(connection.id, limit, nowMs)
      if ('retryAfterMs' in taken) {
        throw new AppError('DesktopFlowsActionThrottled', {
          message: `More than ${limit} runs were requested through this connection in the last minute.`,
          details: {
            limitPerMinute: limit,
            retryAfterSeconds: Math.max(1, Math.ceil(taken.retryAfterMs / 1000)),
          },
        })
      }
      const { slot } = taken
      let place: PromisedPlace | undefined
      try {
        const group = await groupOf.first({
          tenantId: principal.tenant.id,
          id: connection.target_group_id,
        })
        if (!group) throw new AppError('XrmMachineGroupNotFound')
        if (!(await dispatcher.hasMachines(group.id))) throw new AppError('GroupIsEmpty')
        place = await dispatcher.promisePlace(group.id, settings.maxQueuedRuns)
        if (!place) {
          throw new AppError('UIFlowRunQueueFull', {
            message: `The desktop flow run queue is full. Run queue max size: '${settings.maxQueuedRuns}'`,
          })
        }
        const id = deps.newId()
        const draft = {
          tenant_id: principal.tenant.id,
          run_owner_type: connection.run_owner_type,
          run_owner_id: connection.run_owner_id,
          flow_id: flow.id,
          target_group_id: group.id,
          connection_id: connection.id,
        }
        if (!(await deps.runOwnerMayRun(draft, { caller: principal, flow })))
          throw new AppError('RunOwnerLacksAccess')

        const queueSeconds =
          connection.type === 'signIn'
            ? settings.signInQueueTimeoutSeconds
            : settings.queueTimeoutSeconds
        // Sealed to the target group at once: from here on only its machines can read them.
        // A run without inputs has nothing to seal.
        const sealedInputs =
          Object.keys(inputs.values).length === 0
            ? NO_INPUTS
            : await sealToGroup(group.public_key ?? '', JSON.stringify(inputs.values), `run:${id}`)
        if (request.wait && connection.type === 'signIn') {
          // Synchronous mode: the token is minted now, as the caller waits (reference §3.10).
          deps.presetSignInToken(id, await deps.connections.mintSignInToken(connection))
        }
        // The request time is the moment the run joins the queue.
        const queuedMs = deps.clock.now().getTime()
        const at = new Date(queuedMs).toISOString()
        const run: RunRow = {
          id,
          environment_id: flow.environment_id,
          flow_version_id: version.id,
          caller_type: principal.type,
          caller_id: principal.id,
          connection_owner_id: connection.owner_id,
          run_mode: request.runMode,
          priority: request.priority,
          priority_rank: PRIORITY_RANK[request.priority],
          status: 'Queued',
          sealed_inputs: sealedInputs,
          shown_inputs: JSON.stringify(inputs.shown),
          // The request's, else the flow's or the environment's default, cut to its longest.
          timeout_seconds:
            request.timeoutSeconds ??
            Math.min(
              manifest.timeoutSeconds ?? settings.defaultRunTimeoutSeconds,
              settings.maxRunTimeoutSeconds,
            ),
          callback_url: request.callbackUrl ?? null,
          idempotency_key: request.idempotencyKey ?? null,
          parent_run_id: request.parentRunId ?? null,
          requested_at: at,
          moved_to_top_at: null,
          queue_rank: 0,
          queue_deadline: new Date(queuedMs + queueSeconds * 1000).toISOString(),
          machine_id: null,
          offered_at: null,
          lease_expires_at: null,
          started_at: null,
          finished_at: null,
          os_account: connection.os_account,
          exit_code: null,
          outputs: null,
          error: null,
          refusals: null,
          ...draft,
        }
        const queued = {
          at,
          kind: 'queued',
          details: { priority: run.priority, runMode: run.run_mode },
        }
        /** How the run's first placement left it, when it was stored already taken. */
        let takenAtOnce: FirstPass | undefined
        // Admission's checks are done: the run joins its queue now. When it can go at once,
        // placing and storing it (one commit) count from here, as a queued run's pass and take do.
        const joining = performance.now()
        try {
          takenAtOnce = await dispatcher.admitAtOnce(run, queued)
          if (!takenAtOnce)
            await deps.writes.write(async (trx) => {
              const within = store.within(trx)
              await within.insert(run)
              await within.event(run, at, queued.kind, queued.details)
            })
          slot.keep(queuedMs)
        } catch (error) {
          // The commit's answer may have been lost after the database committed: a run stored
          // after all is admitted (one stored queued joins its queue).
          const stored = await store.byId(id).catch(() => undefined)
          if (!stored) {
            // Not stored: a token minted for it is never handed out.
            deps.presetSignInToken(id, undefined)
            // Two retries with one key at once: the second finds the first.
            const first = await retried()
            if (first) return { run: first, created: false }
            throw error
          }
          if (stored.status !== 'Queued') takenAtOnce = { run: stored }
          slot.keep(queuedMs)
        }
        const queuedAt = takenAtOnce ? joining : performance.now()
        const firstPass = takenAtOnce ? Promise.resolve(takenAtOnce) : dispatcher.enqueued(run)
        return {
          run,
          created: true,
          queuedAt,
          firstPass,
          known: { flowName: flow.name, flowVersion: version.version, events: [queued] },
        }
      } finally {
        place?.release()
        slot.release()
      }
    },

    /** Resolves when the run ends (synchronous mode). */
    waitForEnd(runId: string): Promise<RunRow> {
      return new Promise((resolve) => {
        const list = waiters.get(runId) ?? []
        list.push(resolve)
        waiters.set(runId, list)
        store
          .byId(runId)
          .then((run) => {
            if (run && ['Succeeded', 'Failed', 'Cancelled'].includes(run.status)) {
              waiters.delete(runId)
              resolve(run)
            }
          })
          .catch(() => undefined) // The dispatcher's end report still resolves it.
      })
    },

    /** Called by the dispatcher when a run ends. */
    ended(run: RunRow): void {
      const list = waiters.get(run.id)
      waiters.delete(run.id)
      for (const resolve of list ?? []) resolve(run)
    },

    visible,

    async list(principal: Principal, environmentId: string, filter: RunFilter) {
      return (await runsSeenBy(principal, environmentId, filter)).runs
    },

    async cancel(principal: Principal, id: string): Promise<RunRow> {
      const { run, relation } = await find(principal, id)
      if (!relation.admin && !relation.requester && !relation.ownsConnection)
        throw await refused(principal, run, 'run.cancel', {
          message: "Only the run's caller, run owner, connection owner or an admin may cancel it.",
        })
      if (!(await dispatcher.cancel(run, `Cancelled by ${principal.name}.`)))
        throw new AppError('RunNotCancellable')
      return (await store.byId(id)) ?? run
    },

    /** Cancels the parent's queued and running runs the principal may cancel; their ids. */
    async cancelParent(principal: Principal, environmentId: string, parentRunId: string) {
      const { admin, runs } = await runsSeenBy(principal, environmentId, {
        parentRunId,
        unended: true,
      })
      const runIds: string[] = []
      for (const run of runs) {
        // Listed as the keeper of its machine: seen, not the keeper's to cancel.
        if (!admin && !requestedOrConnected(principal, run)) continue
        if (await dispatcher.cancel(run, `Cancelled with parent run ${parentRunId}.`))
          runIds.push(run.id)
      }
      // Each run's own event says who cancelled it; this says that one request did it all.
      await deps.audit.record({
        principal,
        environmentId,
        action: 'run.cancelParent',
        targetType: 'parentRun',
        targetId: parentRunId,
        outcome: 'success',
        details: { runIds },
      })
      return { cancelled: runIds.length, runIds }
    },

    async update(
      principal: Principal,
      id: string,
      changes: {
        priority?: 'high' | 'normal' | 'low' | undefined
        movedToTop?: boolean | undefined
      },
    ): Promise<RunRow> {
      if (changes.priority === undefined && changes.movedToTop === undefined)
        throw new AppError('InvalidRequestBody', {
          message:
            'Nothing to change: give "priority" (high, normal or low), "movedToTop", or both.',
        })
      const { run, relation } = await find(principal, id)
      if (changes.movedToTop !== undefined && !relation.ownsTarget)
        throw await refused(principal, run, 'run.update', {
          message:
            'Only the owner of the machine or group, or an administrator, may move a run to the top or undo it.',
          details: { requiredAccess: 'owner' },
        })
      if (changes.priority !== undefined && !relation.manager && !relation.requester)
        throw await refused(principal, run, 'run.update', {
          message:
            "Only the run's caller, run owner, or an owner or co-owner of the machine or group may change its priority.",
          details: { requiredAccess: 'coOwner' },
        })
      const at = deps.clock.now().toISOString()
      const set: Partial<RunRow> = {}
      if (changes.priority !== undefined) {
        set.priority = changes.priority
        set.priority_rank = PRIORITY_RANK[changes.priority]
      }
      if (changes.movedToTop !== undefined) {
        set.moved_to_top_at = changes.movedToTop ? at : null
        set.queue_rank = queueRankOf(set.moved_to_top_at)
      }
      const changed = await store.transition(run.id, 'Queued', set)
      if (!changed) {
        const status = (await store.byId(run.id))?.status ?? run.status
        throw new AppError('RunNotQueued', {
          message: `Only a queued run can change priority or move in the queue; this run is ${status}.`,
          details: { status },
        })
      }
      await store.event(run, at, 'queueChanged', {
        ...changes,
        by: { type: principal.type, id: principal.id, name: principal.name },
      })
      await dispatcher.reordered(changed)
      return (await store.byId(id)) ?? changed
    },
  }
}

export type RunService = ReturnType<typeof createRunService>
