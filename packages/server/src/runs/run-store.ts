/**
 * Runs in the database. Every change of status is one conditional update (`where status = …`),
 * so two actors (a cancel and a finish, two dispatch passes, a restart) can never both win:
 * the one whose update touched the row acts, the other does nothing. A change and the event
 * that records it are written together (`move`), inside the caller's transaction when the store
 * is bound to one (`within`).
 *
 * @module
 */
import { type Kysely, type Selectable, sql } from 'kysely'

import {
  type Database,
  preparedPerShape,
  prepareQuery,
  type RunStatusValue,
  type RunTable,
} from '../storage/index.ts'
import type { IdGenerator } from '../system/index.ts'

export type RunRow = Selectable<RunTable>

// Statuses written into the SQL as literals, not bound: the indexes of queued and of running
// runs are partial (migration 0010), and a database matches a query's condition against the
// index's when it plans the query. With a bound status SQLite plans again on each new value,
// and PostgreSQL could not use the index in a generic plan.
export const QUEUED = sql.lit<RunStatusValue>('Queued')
export const RUNNING = sql.lit<RunStatusValue>('Running')

export const PRIORITY_RANK = { high: 0, normal: 1, low: 2 } as const

/** What the run-owner check looks at: who, which flow, which target, which connection. */
export type RunOwnerSubject = Pick<
  RunRow,
  'tenant_id' | 'run_owner_type' | 'run_owner_id' | 'flow_id' | 'target_group_id' | 'connection_id'
>

/** Every column of a run: a new run is stored whole, so its insert has one shape. */
const RUN_COLUMNS = Object.keys({
  id: true,
  tenant_id: true,
  environment_id: true,
  flow_id: true,
  flow_version_id: true,
  connection_id: true,
  target_group_id: true,
  caller_type: true,
  caller_id: true,
  connection_owner_id: true,
  run_owner_type: true,
  run_owner_id: true,
  run_mode: true,
  priority: true,
  priority_rank: true,
  status: true,
  sealed_inputs: true,
  shown_inputs: true,
  timeout_seconds: true,
  callback_url: true,
  idempotency_key: true,
  parent_run_id: true,
  requested_at: true,
  moved_to_top_at: true,
  queue_rank: true,
  queue_deadline: true,
  machine_id: true,
  offered_at: true,
  lease_expires_at: true,
  started_at: true,
  finished_at: true,
  os_account: true,
  exit_code: true,
  outputs: true,
  error: true,
  refusals: true,
} satisfies Record<keyof RunRow, true>) as (keyof RunRow)[]

/** The values of an event's insert, as prepared placeholders. */
// A type, not an interface: prepared queries take records of placeholders.
type EventArgs = {
  id: string
  tenantId: string
  runId: string
  at: string
  kind: string
  details: string | null
}

/** An event's row from the placeholders of `a` whose names end in `suffix`. */
function eventValues(a: Record<string, unknown>, suffix: string) {
  const of = <K extends keyof EventArgs>(name: K) => a[`${name}${suffix}`] as EventArgs[K]
  return {
    id: of('id'),
    tenant_id: of('tenantId'),
    run_id: of('runId'),
    at: of('at'),
    kind: of('kind'),
    details: of('details'),
  }
}

/** The store's queries that run for every run, built and compiled once per database. */
function prepareRunQueries(db: Kysely<Database>) {
  const queued = (q: Kysely<Database>, groupId: string) =>
    q.selectFrom('runs').where('target_group_id', '=', groupId).where('status', '=', QUEUED)
  return {
    // Built through the query builder, a run's insert (36 columns) cost more than running it.
    insert: prepareQuery(db, (q, a: RunRow & Record<string, unknown>) =>
      q
        .insertInto('runs')
        .values(Object.fromEntries(RUN_COLUMNS.map((column) => [column, a[column]])) as RunRow),
    ),
    byId: prepareQuery(db, (q, a: { id: string }) =>
      q.selectFrom('runs').selectAll().where('id', '=', a.id),
    ),
    find: prepareQuery(db, (q, a: { tenantId: string; id: string }) =>
      q.selectFrom('runs').selectAll().where('tenant_id', '=', a.tenantId).where('id', '=', a.id),
    ),
    event: prepareQuery(db, (q, a: EventArgs) =>
      q.insertInto('run_events').values(eventValues(a, '')),
    ),
    // A step that records two events at once (a run taken at admission: `queued`, `offered`)
    // inserts both in one statement: one statement less in the commit that offers a run.
    eventPair: prepareQuery(
      db,
      (q, a: EventArgs & { [K in keyof EventArgs as `${K}2`]: EventArgs[K] }) =>
        q.insertInto('run_events').values([eventValues(a, ''), eventValues(a, '2')]),
    ),
    queueHead: prepareQuery(db, (q, a: { groupId: string; limit: number }) =>
      queued(q, a.groupId)
        .selectAll()
        .orderBy('queue_rank')
        .orderBy('priority_rank')
        .orderBy('requested_at')
        .orderBy('id')
        .limit(a.limit),
    ),
    ahead: prepareQuery(
      db,
      (
        q,
        a: { groupId: string; rank: number; priority: number; requestedAt: string; id: string },
      ) =>
        queued(q, a.groupId)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where((eb) =>
            eb(
              eb.refTuple('queue_rank', 'priority_rank', 'requested_at', 'id'),
              '<',
              eb.tuple(a.rank, a.priority, a.requestedAt, a.id),
            ),
          ),
    ),
    transitionOf: preparedPerShape(
      (
        columns: readonly (keyof RunRow)[],
        statuses: readonly RunStatusValue[],
        byMachine: boolean,
        unstarted: boolean,
        byOffer: boolean,
      ) => `${columns.join(',')} ${statuses.join(',')} ${byMachine} ${unstarted} ${byOffer}`,
      (columns, statuses, byMachine, unstarted, byOffer) =>
        prepareQuery(
          db,
          (q, a: Partial<RunRow> & { id: string; machineId?: string; offeredAt?: string }) => {
            const set = Object.fromEntries(columns.map((c) => [c, a[c]])) as Partial<RunRow>
            let query = q
              .updateTable('runs')
              .set(set)
              .where('id', '=', a.id)
              .where('status', 'in', statuses)
            if (byMachine) query = query.where('machine_id', '=', a.machineId ?? '')
            if (unstarted) query = query.where('started_at', 'is', null)
            if (byOffer) query = query.where('offered_at', '=', a.offeredAt ?? '')
            return query.returningAll()
          },
        ),
    ),
    requestTimes: prepareQuery(db, (q, a: { connectionId: string; since: string }) =>
      q
        .selectFrom('runs')
        .select('requested_at')
        .where('connection_id', '=', a.connectionId)
        .where('requested_at', '>=', a.since),
    ),
  }
}

export function createRunStore(
  db: Kysely<Database>,
  newId: IdGenerator,
  queries = prepareRunQueries(db),
) {
  const byId = (id: string) => queries.byId.first({ id }, db)
  /**
   * What decides when each running run is due, and no more: the deadline timer reads every
   * running run, and a whole row holds the run's sealed inputs (up to 2 MB).
   */
  const runningDeadlines = (): Promise<RunningDeadlines[]> =>
    db
      .selectFrom('runs')
      .select(['id', 'lease_expires_at', 'started_at', 'offered_at', 'timeout_seconds'])
      .where('status', '=', RUNNING)
      .execute()

  /** Changes a run only if it still has the expected status; the changed row when it did. */
  async function transition(
    id: string,
    from: RunStatusValue | readonly RunStatusValue[],
    changes: Partial<RunRow>,
    /**
     * Only if the run is on this machine; only if it has not started; only if it is still the
     * offer made at this time.
     */
    extra?: { machineId?: string; unstarted?: boolean; offeredAt?: string },
  ): Promise<RunRow | undefined> {
    const statuses = typeof from === 'string' ? [from] : [...from]
    // Kysely leaves out a column set to undefined; so does the prepared shape.
    const columns = (Object.keys(changes) as (keyof RunRow)[]).filter(
      (c) => changes[c] !== undefined,
    )
    const byMachine = extra?.machineId !== undefined
    const prepared = queries.transitionOf(
      columns,
      statuses,
      byMachine,
      extra?.unstarted === true,
      extra?.offeredAt !== undefined,
    )
    return prepared.first(
      { ...changes, id, machineId: extra?.machineId, offeredAt: extra?.offeredAt },
      db,
    )
  }

  const eventArgs = (
    run: Pick<RunRow, 'id' | 'tenant_id'>,
    { at, kind, details }: RecordedEvent,
  ): EventArgs => ({
    id: newId(),
    tenantId: run.tenant_id,
    runId: run.id,
    at,
    kind,
    details: details === undefined ? null : JSON.stringify(details),
  })

  async function event(
    run: Pick<RunRow, 'id' | 'tenant_id'>,
    at: string,
    kind: string,
    details?: unknown,
  ): Promise<void> {
    await queries.event.all(eventArgs(run, { at, kind, details }), db)
  }

  /** Records `first`, then `second`, in one statement. */
  async function eventPair(
    run: Pick<RunRow, 'id' | 'tenant_id'>,
    first: RecordedEvent,
    second: RecordedEvent,
  ): Promise<void> {
    const one = eventArgs(run, first)
    const two = eventArgs(run, second)
    await queries.eventPair.all(
      {
        ...one,
        id2: two.id,
        tenantId2: two.tenantId,
        runId2: two.runId,
        at2: two.at,
        kind2: two.kind,
        details2: two.details,
      },
      db,
    )
  }

  return {
    /** The same store, bound to a transaction. */
    within: (trx: Kysely<Database>) => createRunStore(trx, newId, queries),
    byId,
    transition,
    event,
    eventPair,
    /**
     * A conditional transition and, when it happened, its event (after an `earlier` one, for a
     * step folded into it): the changed row, or undefined.
     */
    async move(
      id: string,
      from: RunStatusValue | readonly RunStatusValue[],
      changes: Partial<RunRow>,
      recorded: RecordedEvent & { machineId?: string; unstarted?: boolean; offeredAt?: string },
      earlier?: RecordedEvent,
    ): Promise<RunRow | undefined> {
      const { machineId, unstarted, offeredAt } = recorded
      const moved = await transition(id, from, changes, { machineId, unstarted, offeredAt })
      if (!moved) return undefined
      if (earlier) await eventPair(moved, earlier, recorded)
      else await event(moved, recorded.at, recorded.kind, recorded.details)
      return moved
    },
    /** Notes that the run, which just ended, is owed its callback. */
    async oweCallback(run: Pick<RunRow, 'id' | 'tenant_id'>, endedAt: string): Promise<void> {
      await db
        .insertInto('pending_callbacks')
        .values({ run_id: run.id, tenant_id: run.tenant_id, ended_at: endedAt })
        .onConflict((oc) => oc.column('run_id').doNothing())
        .execute()
    },
    /** The run's callback was made (or given up): it is owed no more. */
    async paidCallback(runId: string): Promise<void> {
      await db.deleteFrom('pending_callbacks').where('run_id', '=', runId).execute()
    },
    /** Runs that ended and are still owed their callback, oldest first. */
    async owedCallbacks(): Promise<RunRow[]> {
      return db
        .selectFrom('pending_callbacks')
        .innerJoin('runs', 'runs.id', 'pending_callbacks.run_id')
        .selectAll('runs')
        .orderBy('pending_callbacks.ended_at')
        .execute()
    },
    async insert(row: RunRow): Promise<void> {
      await queries.insert.all(row, db)
    },
    async find(tenantId: string, id: string): Promise<RunRow | undefined> {
      return queries.find.first({ tenantId, id }, db)
    },
    async byIdempotencyKey(tenantId: string, callerId: string, key: string) {
      return db
        .selectFrom('runs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('caller_id', '=', callerId)
        .where('idempotency_key', '=', key)
        .executeTakeFirst()
    },
    /** The first `limit` runs of a target's queue, in queue order: one walk of an index. */
    async queueHead(groupId: string, limit: number): Promise<RunRow[]> {
      return queries.queueHead.all({ groupId, limit }, db)
    },
    /** Where a queued run stands in its target's queue, 1 for the head: counted, not read. */
    async positionOf(run: QueuePlace & Pick<RunRow, 'target_group_id'>): Promise<number> {
      const ahead = await queries.ahead.first(
        {
          groupId: run.target_group_id,
          rank: run.queue_rank,
          priority: run.priority_rank,
          requestedAt: run.requested_at,
          id: run.id,
        },
        db,
      )
      return Number(ahead?.n ?? 0) + 1
    },
    /** What the given machines hold now (offered or running), one row per run. */
    async heldBy(machineIds: readonly string[]) {
      if (machineIds.length === 0) return []
      return db
        .selectFrom('runs')
        .select(['id', 'machine_id', 'run_mode', 'os_account'])
        .where('machine_id', 'in', [...machineIds])
        .where('status', '=', RUNNING)
        .execute()
    },
    /** When the runs of a connection requested at `since` or later were requested. */
    async requestTimes(connectionId: string, since: string): Promise<string[]> {
      const rows = await queries.requestTimes.all({ connectionId, since }, db)
      return rows.map((r) => r.requested_at)
    },
    /** Runs a machine holds (offered or running). */
    async onMachine(machineId: string): Promise<RunRow[]> {
      return db
        .selectFrom('runs')
        .selectAll()
        .where('machine_id', '=', machineId)
        .where('status', '=', RUNNING)
        .execute()
    },
    /** Queued runs whose queue deadline is at or before `at`. */
    async pastQueueDeadline(at: string): Promise<RunRow[]> {
      return db
        .selectFrom('runs')
        .selectAll()
        .where('status', '=', QUEUED)
        .where('queue_deadline', '<=', at)
        .execute()
    },
    /** Every running run gets a lease until `until` (at start: their machines reconnect). */
    async renewAllLeases(until: string): Promise<void> {
      await db
        .updateTable('runs')
        .set({ lease_expires_at: until })
        .where('status', '=', RUNNING)
        .execute()
    },
    runningDeadlines,
    async groupsWithQueuedRuns(): Promise<string[]> {
      const rows = await db
        .selectFrom('runs')
        .select('target_group_id')
        .distinct()
        .where('status', '=', QUEUED)
        .execute()
      return rows.map((r) => r.target_group_id)
    },
    async renewLeases(machineId: string, runIds: readonly string[], until: string) {
      if (runIds.length === 0) return
      await db
        .updateTable('runs')
        .set({ lease_expires_at: until })
        .where('machine_id', '=', machineId)
        .where('status', '=', RUNNING)
        .where('id', 'in', [...runIds])
        .execute()
    },
    /** The events of several runs, each run's in order. */
    async eventsOf(runIds: readonly string[]) {
      if (runIds.length === 0) return []
      return db
        .selectFrom('run_events')
        .selectAll()
        .where('run_id', 'in', [...runIds])
        .orderBy('at')
        .orderBy('id')
        .execute()
    },
    /** The earliest moment something is due: a queue deadline, a lease, a run's timeout. */
    async nextDeadline(graceMs: number): Promise<number | undefined> {
      const queued = await db
        .selectFrom('runs')
        .select((eb) => eb.fn.min('queue_deadline').as('at'))
        .where('status', '=', QUEUED)
        .executeTakeFirst()
      let next = queued?.at ? Date.parse(String(queued.at)) : Infinity
      for (const run of await runningDeadlines()) {
        // A time that cannot be read (a run with neither start nor offer) sets no deadline.
        for (const time of Object.values(deadlinesOf(run, graceMs)))
          if (Number.isFinite(time)) next = Math.min(next, time)
      }
      return Number.isFinite(next) ? next : undefined
    },
  }
}

export type RunStore = ReturnType<typeof createRunStore>

export type RunningDeadlines = Pick<
  RunRow,
  'id' | 'lease_expires_at' | 'started_at' | 'offered_at' | 'timeout_seconds'
>

/**
 * When a running run's lease ends (Infinity without one) and when it times out: its timeout
 * after it started (or was offered), plus `graceMs` for the machine to report the end itself.
 */
export function deadlinesOf(run: RunningDeadlines, graceMs: number) {
  return {
    leaseEndsAt: run.lease_expires_at ? Date.parse(run.lease_expires_at) : Infinity,
    timesOutAt:
      Date.parse(run.started_at ?? run.offered_at ?? '') + run.timeout_seconds * 1000 + graceMs,
  }
}

/** An event of a run as it is recorded. */
export interface RecordedEvent {
  readonly at: string
  readonly kind: string
  readonly details?: unknown
}

export type QueuePlace = Pick<RunRow, 'id' | 'queue_rank' | 'priority_rank' | 'requested_at'>

/** The rank of a run moved to the top at `at`, or of one that is not (null). */
export const queueRankOf = (movedToTopAt: string | null): number =>
  movedToTopAt === null ? 0 : -Date.parse(movedToTopAt)
