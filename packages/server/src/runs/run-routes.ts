/**
 * The Run desktop flow action and the runs API. Asynchronous by default: 202 with the run and
 * its status URL (`Location`); with `wait: true` the request waits for the end (synchronous
 * mode). A retried request with the same idempotency key answers with the same run.
 *
 * @module
 */
import {
  CancelParentRequest,
  CreateRunRequest,
  Id,
  ListOf,
  Run,
  RunOutcome,
  RunSettings,
  RunStatus,
  UpdateRunRequest,
  UpdateRunSettingsRequest,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Kysely } from 'kysely'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, responses } from '../http/openapi-app.ts'
import type { Database } from '../storage/index.ts'
import { monotonicMs } from '../system/index.ts'
import type { Dispatcher } from './dispatcher.ts'
import type { KnownRunFacts, RunService } from './run-service.ts'
import type { RunRow, RunStore } from './run-store.ts'

/**
 * How long a client polling a run's status URL is asked to wait between polls: a second, the
 * reference's callback retry interval; most runs that go at once end within a few.
 */
const POLL_AFTER_SECONDS = 1
/** The statuses of a run that has ended. */
const ENDED: ReadonlySet<string> = new Set(RunOutcome.options)

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })
const tags = ['Runs']
const RunParams = z.object({ runId: Id })
const EnvironmentParams = z.object({ environmentId: Id })

export const runRouteDefinitions = {
  create: route({
    method: 'post',
    path: '/desktop-flows/{flowId}/runs',
    tags,
    summary:
      'Run a desktop flow through a connection: 202 and a status URL, or (wait) the finished run',
    request: { params: z.object({ flowId: Id }), body: jsonBody(CreateRunRequest) },
    responses: { ...responses(202, Run), ...responses(200, Run) },
  }),
  outcome: route({
    method: 'get',
    path: '/runs/{runId}/outcome',
    tags,
    summary:
      'The status URL of an asynchronous run: 202 (with Retry-After) while it has not ended, then 200 with the ended run',
    request: { params: RunParams },
    responses: { ...responses(202, Run), ...responses(200, Run) },
  }),
  get: route({
    method: 'get',
    path: '/runs/{runId}',
    tags,
    summary: 'A run: status, machine, OS account, outputs; while queued, why it waits',
    request: { params: RunParams },
    responses: responses(200, Run),
  }),
  list: route({
    method: 'get',
    path: '/environments/{environmentId}/runs',
    tags,
    summary:
      'Runs of an environment the caller may see (its own, its connections’, its machines’; all for administrators)',
    request: {
      params: EnvironmentParams,
      query: z.object({
        status: RunStatus.optional(),
        parentRunId: z.string().max(200).optional(),
        flowId: z.uuid().optional(),
        connectionId: z.uuid().optional(),
        /** The newest this many (500 at most, the default). */
        limit: z.coerce.number().int().min(1).max(500).optional(),
      }),
    },
    responses: responses(200, ListOf(Run)),
  }),
  update: route({
    method: 'patch',
    path: '/runs/{runId}',
    tags,
    summary: 'Change the priority of a queued run, move it to the top, or undo that',
    request: { params: RunParams, body: jsonBody(UpdateRunRequest) },
    responses: responses(200, Run),
  }),
  cancel: route({
    method: 'post',
    path: '/runs/{runId}/cancel',
    tags,
    summary: 'Cancel a queued or running run',
    request: { params: RunParams },
    responses: responses(200, Run),
  }),
  cancelParent: route({
    method: 'post',
    path: '/environments/{environmentId}/runs/cancel-parent',
    tags,
    summary: 'Cancel every queued or running run of an outside parent run',
    request: { params: EnvironmentParams, body: jsonBody(CancelParentRequest) },
    responses: responses(200, z.object({ cancelled: z.int(), runIds: z.array(z.uuid()) })),
  }),
  getSettings: route({
    method: 'get',
    path: '/environments/{environmentId}/run-settings',
    tags,
    summary: 'Run limits of the environment',
    request: { params: EnvironmentParams },
    responses: responses(200, RunSettings),
  }),
  updateSettings: route({
    method: 'patch',
    path: '/environments/{environmentId}/run-settings',
    tags,
    summary: 'Change run limits of the environment (environment administrators)',
    request: { params: EnvironmentParams, body: jsonBody(UpdateRunSettingsRequest) },
    responses: responses(200, RunSettings),
  }),
} as const

/** How long the answer to a new run waits for the run's first placement. */
const FIRST_PLACEMENT_WAIT_MS = 50

/** Waits for `work` to settle, but no longer than `ms`; its value, or undefined. Never throws. */
async function settledWithin<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const value = await Promise.race([
    work.catch(() => undefined),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    }),
  ])
  clearTimeout(timer)
  return value
}

/**
 * Whether the request came from the server's own machine: from a loopback address, and not
 * relayed by a proxy there (which says so in `Forwarded` or `X-Forwarded-For`) for a caller
 * elsewhere.
 */
function isLocalCaller(c: Context<AppEnv>): boolean {
  if (c.req.header('forwarded') !== undefined || c.req.header('x-forwarded-for') !== undefined)
    return false
  const address = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
    ?.incoming?.socket?.remoteAddress
  return address === '::1' || /^(::ffff:)?127\./.test(address ?? '')
}

const parse = <T>(json: string | null): T | null => (json === null ? null : (JSON.parse(json) as T))
const ms = (from: string | null, to: string | null) =>
  from && to ? Date.parse(to) - Date.parse(from) : null

type RunEvent = Run['events'][number]
type FlowFacts = { name: string; version: number }

/**
 * The API view of runs. `one` maps a run (with `known`, sparing the reads for a run just
 * admitted); `many` maps a page of runs with one read for their flows and one for their events.
 */
export function createRunMapper(deps: {
  db: Kysely<Database>
  store: RunStore
  dispatcher: Dispatcher
}) {
  const eventsOf = async (runIds: readonly string[]): Promise<Map<string, RunEvent[]>> => {
    const byRun = new Map<string, RunEvent[]>()
    for (const e of await deps.store.eventsOf(runIds)) {
      const list = byRun.get(e.run_id) ?? []
      list.push({
        at: e.at,
        kind: e.kind,
        ...(e.details !== null && { details: JSON.parse(e.details) as unknown }),
      })
      byRun.set(e.run_id, list)
    }
    return byRun
  }
  const flowsOf = async (versionIds: readonly string[]): Promise<Map<string, FlowFacts>> => {
    if (versionIds.length === 0) return new Map()
    const rows = await deps.db
      .selectFrom('flow_versions')
      .innerJoin('desktop_flows', 'desktop_flows.id', 'flow_versions.flow_id')
      .select(['flow_versions.id', 'desktop_flows.name', 'flow_versions.version'])
      .where('flow_versions.id', 'in', [...new Set(versionIds)])
      .execute()
    return new Map(rows.map((r) => [r.id, { name: r.name, version: r.version }]))
  }
  const shape = async (
    run: RunRow,
    flow: FlowFacts | undefined,
    events: readonly RunEvent[],
  ): Promise<Run> => ({
    id: run.id,
    environmentId: run.environment_id,
    flowId: run.flow_id,
    flowName: flow?.name ?? '(deleted)',
    flowVersion: flow?.version ?? 0,
    connectionId: run.connection_id,
    targetGroupId: run.target_group_id,
    status: run.status,
    runMode: run.run_mode,
    priority: run.priority,
    callerType: run.caller_type,
    callerId: run.caller_id,
    connectionOwnerId: run.connection_owner_id,
    runOwnerType: run.run_owner_type,
    runOwnerId: run.run_owner_id,
    machineId: run.machine_id,
    machineCredentialUser: run.os_account,
    inputs: parse<Record<string, unknown>>(run.shown_inputs) ?? {},
    outputs: parse<Record<string, unknown>>(run.outputs),
    exitCode: run.exit_code,
    error: parse<Run['error']>(run.error),
    timeoutSeconds: run.timeout_seconds,
    parentRunId: run.parent_run_id,
    requestedAt: run.requested_at,
    movedToTopAt: run.moved_to_top_at,
    startedAt: run.started_at,
    finishedAt: run.finished_at,
    totalDurationMs: ms(run.requested_at, run.finished_at),
    executionDurationMs: ms(run.started_at, run.finished_at),
    waiting: await deps.dispatcher.waiting(run),
    events: [...events],
  })

  async function one(run: RunRow, known?: KnownRunFacts): Promise<Run> {
    const flow = known
      ? { name: known.flowName, version: known.flowVersion }
      : (await flowsOf([run.flow_version_id])).get(run.flow_version_id)
    const events = known?.events ?? (await eventsOf([run.id])).get(run.id) ?? []
    return shape(run, flow, events)
  }

  async function many(runs: readonly RunRow[]): Promise<Run[]> {
    const flows = await flowsOf(runs.map((r) => r.flow_version_id))
    const events = await eventsOf(runs.map((r) => r.id))
    const mapped: Run[] = []
    for (const run of runs)
      mapped.push(await shape(run, flows.get(run.flow_version_id), events.get(run.id) ?? []))
    return mapped
  }

  return Object.assign(one, { many })
}

export function registerRunRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: {
    runs: RunService
    toApi: ReturnType<typeof createRunMapper>
    /** Where clients reach the server, when configured (`DESKLINK_PUBLIC_URL`). */
    publicUrl: () => string | undefined
  },
): void {
  const r = runRouteDefinitions
  const { runs, toApi } = deps
  app.openapi(r.create, async (c) => {
    const request = c.req.valid('json')
    const principal = c.get('principal')
    const admitted = await runs.create(principal, c.req.valid('param').flowId, request)
    const { run, created, firstPass } = admitted
    // The answer waits a moment for the run's first placement: it then says whether the run
    // went to a machine. Nothing is done for the answer before that pass ended, so building
    // it never delays the offer.
    const placed =
      firstPass && !request.wait
        ? await settledWithin(firstPass, FIRST_PLACEMENT_WAIT_MS)
        : undefined
    // How long admission took, up to the moment the run was queued (RFC Server-Timing); and,
    // to a client on the server's own machine, that moment on the machine's monotonic clock,
    // which every process there shares, and the moment its offer was handed to the machine's
    // connection if its first pass sent one: it can time the run's way to its agent from the
    // queue on, and tell the server's part from the way. Others are not told (the clock tells
    // how long the machine has been up).
    if (admitted.queuedAt !== undefined) {
      const admission = `admission;dur=${(admitted.queuedAt - c.get('receivedAt')).toFixed(3)}`
      const sentAt = placed?.offerSentAt
      c.header(
        'Server-Timing',
        isLocalCaller(c)
          ? `${admission}, queued;desc="${monotonicMs(admitted.queuedAt).toFixed(3)}"` +
              (sentAt === undefined ? '' : `, offer-sent;desc="${monotonicMs(sentAt).toFixed(3)}"`)
          : admission,
      )
    }
    // From the public URL when there is one: behind a proxy that ends TLS the request says
    // http, and maybe an inner host name. Else from the request, which reached the server.
    const origin = deps.publicUrl() ?? new URL(c.req.url).origin
    c.header('Location', `${origin}/api/v1/runs/${run.id}/outcome`)
    if (request.wait) {
      const ended = await runs.waitForEnd(run.id)
      return c.json(await toApi(ended), 200)
    }
    c.header('Retry-After', String(POLL_AFTER_SECONDS))
    if (!firstPass) return c.json(await toApi(run), created ? 202 : 200)
    // The run as that pass left it (taken, ended, or waiting with its reasons), with the
    // events it recorded; read when the pass took longer than the wait, or could not tell.
    const current = placed?.run ?? (await runs.visible(principal, run.id))
    const { known } = admitted
    const events = known?.events && placed?.recorded && [...known.events, ...placed.recorded]
    return c.json(await toApi(current, known && { ...known, events }), 202)
  })
  app.openapi(r.outcome, async (c) => {
    const run = await runs.visible(c.get('principal'), c.req.valid('param').runId)
    if (ENDED.has(run.status)) return c.json(await toApi(run), 200)
    c.header('Retry-After', String(POLL_AFTER_SECONDS))
    return c.json(await toApi(run), 202)
  })
  app.openapi(r.get, async (c) =>
    c.json(await toApi(await runs.visible(c.get('principal'), c.req.valid('param').runId)), 200),
  )
  app.openapi(r.list, async (c) => {
    const rows = await runs.list(
      c.get('principal'),
      c.req.valid('param').environmentId,
      c.req.valid('query'),
    )
    return c.json({ items: await toApi.many(rows) }, 200)
  })
  app.openapi(r.update, async (c) =>
    c.json(
      await toApi(
        await runs.update(c.get('principal'), c.req.valid('param').runId, c.req.valid('json')),
      ),
      200,
    ),
  )
  app.openapi(r.cancel, async (c) =>
    c.json(await toApi(await runs.cancel(c.get('principal'), c.req.valid('param').runId)), 200),
  )
  app.openapi(r.cancelParent, async (c) =>
    c.json(
      await runs.cancelParent(
        c.get('principal'),
        c.req.valid('param').environmentId,
        c.req.valid('json').parentRunId,
      ),
      200,
    ),
  )
  app.openapi(r.getSettings, async (c) => {
    const principal = c.get('principal')
    const { environmentId } = c.req.valid('param')
    return c.json(await runs.visibleSettings(principal, environmentId), 200)
  })
  app.openapi(r.updateSettings, async (c) =>
    c.json(
      await runs.updateSettings(
        c.get('principal'),
        c.req.valid('param').environmentId,
        c.req.valid('json'),
      ),
      200,
    ),
  )
}
