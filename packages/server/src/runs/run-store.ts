/**
 * Runs in the database. Every change of status is one conditional update (`where status = …`),
 * so two actors (a cancel and a finish, two dispatch passes, a restart) can never both win:
 * the one whose update touched the row acts, the other does nothing.
 *
 * @module
 */
import type { Kysely, Selectable } from 'kysely'

import type { Database, RunStatusValue, RunTable } from '../storage/index.ts'
import type { IdGenerator } from '../system/index.ts'

export type RunRow = Selectable<RunTable>

export const PRIORITY_RANK = { high: 0, normal: 1, low: 2 } as const

/** What the run-owner check looks at: who, which flow, which target, which connection. */
export type RunOwnerSubject = Pick<
  RunRow,
  'tenant_id' | 'run_owner_type' | 'run_owner_id' | 'flow_id' | 'target_group_id' | 'connection_id'
>

export function createRunStore(db: Kysely<Database>, newId: IdGenerator) {
  const byId = (id: string) =>
    db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst()

  return {
    byId,
    async insert(row: RunRow): Promise<void> {
      await db.insertInto('runs').values(row).execute()
    },
    async find(tenantId: string, id: string): Promise<RunRow | undefined> {
      return db
        .selectFrom('runs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
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
    /** The queue of a target: moved-to-top first (latest move first), then priority, then age. */
    async queued(groupId: string): Promise<RunRow[]> {
      const rows = await db
        .selectFrom('runs')
        .selectAll()
        .where('target_group_id', '=', groupId)
        .where('status', '=', 'Queued')
        .execute()
      return rows.sort(queueOrder)
    },
    async countQueued(groupId: string): Promise<number> {
      const row = await db
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('target_group_id', '=', groupId)
        .where('status', '=', 'Queued')
        .executeTakeFirst()
      return Number(row?.n ?? 0)
    },
    async countRecent(connectionId: string, since: string): Promise<number> {
      const row = await db
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('connection_id', '=', connectionId)
        .where('requested_at', '>=', since)
        .executeTakeFirst()
      return Number(row?.n ?? 0)
    },
    /** Runs a machine holds (offered or running). */
    async onMachine(machineId: string): Promise<RunRow[]> {
      return db
        .selectFrom('runs')
        .selectAll()
        .where('machine_id', '=', machineId)
        .where('status', '=', 'Running')
        .execute()
    },
    async running(): Promise<RunRow[]> {
      return db.selectFrom('runs').selectAll().where('status', '=', 'Running').execute()
    },
    async groupsWithQueuedRuns(): Promise<string[]> {
      const rows = await db
        .selectFrom('runs')
        .select('target_group_id')
        .distinct()
        .where('status', '=', 'Queued')
        .execute()
      return rows.map((r) => r.target_group_id)
    },
    /** Changes a run only if it still has the expected status; true when it did. */
    async transition(
      id: string,
      from: RunStatusValue | readonly RunStatusValue[],
      changes: Partial<RunRow>,
      extra?: { machineId?: string },
    ): Promise<boolean> {
      let query = db
        .updateTable('runs')
        .set(changes)
        .where('id', '=', id)
        .where('status', 'in', typeof from === 'string' ? [from] : [...from])
      if (extra?.machineId !== undefined) query = query.where('machine_id', '=', extra.machineId)
      const result = await query.executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
    async renewLeases(machineId: string, runIds: readonly string[], until: string) {
      if (runIds.length === 0) return
      await db
        .updateTable('runs')
        .set({ lease_expires_at: until })
        .where('machine_id', '=', machineId)
        .where('status', '=', 'Running')
        .where('id', 'in', [...runIds])
        .execute()
    },
    async event(
      run: Pick<RunRow, 'id' | 'tenant_id'>,
      at: string,
      kind: string,
      details?: unknown,
    ) {
      await db
        .insertInto('run_events')
        .values({
          id: newId(),
          tenant_id: run.tenant_id,
          run_id: run.id,
          at,
          kind,
          details: details === undefined ? null : JSON.stringify(details),
        })
        .execute()
    },
    async events(runId: string) {
      return db
        .selectFrom('run_events')
        .selectAll()
        .where('run_id', '=', runId)
        .orderBy('at')
        .orderBy('id')
        .execute()
    },
    /** The earliest moment something is due: a queue deadline, a lease, a run's timeout. */
    async nextDeadline(graceMs: number): Promise<number | undefined> {
      const queued = await db
        .selectFrom('runs')
        .select((eb) => eb.fn.min('queue_deadline').as('at'))
        .where('status', '=', 'Queued')
        .executeTakeFirst()
      const running = await db
        .selectFrom('runs')
        .select(['lease_expires_at', 'started_at', 'offered_at', 'timeout_seconds'])
        .where('status', '=', 'Running')
        .execute()
      const times = running.flatMap((r) => [
        r.lease_expires_at ? Date.parse(r.lease_expires_at) : Infinity,
        Date.parse(r.started_at ?? r.offered_at ?? '') + r.timeout_seconds * 1000 + graceMs,
      ])
      if (queued?.at) times.push(Date.parse(String(queued.at)))
      const next = Math.min(...times.filter((t) => Number.isFinite(t)))
      return Number.isFinite(next) ? next : undefined
    },
  }
}

export type RunStore = ReturnType<typeof createRunStore>

/** Moved-to-top first (the latest move first), then priority, then request time. */
export function queueOrder(a: RunRow, b: RunRow): number {
  if (a.moved_to_top_at !== b.moved_to_top_at) {
    if (a.moved_to_top_at === null) return 1
    if (b.moved_to_top_at === null) return -1
    return a.moved_to_top_at > b.moved_to_top_at ? -1 : 1
  }
  if (a.priority_rank !== b.priority_rank) return a.priority_rank - b.priority_rank
  if (a.requested_at !== b.requested_at) return a.requested_at < b.requested_at ? -1 : 1
  return a.id < b.id ? -1 : 1
}
