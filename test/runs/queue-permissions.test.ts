/**
 * Who may see and order a queue (reference §2.11–2.12), on both databases: the run's caller
 * changes its priority and cancels it; a co-owner of the machine sees the runs queued on it (and
 * lists them) and changes their priority, but neither moves them to the top (only the machine's
 * owner or an administrator does) nor cancels them (one by one or by their parent run); anyone
 * else does not see them, nor does the caller once it has no role left in the environment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { BACKENDS } from '../support/backends.ts'
import { type ChannelTestbed, startChannelTestbed } from '../support/channel-testbed.ts'
import { api, signIn } from '../support/test-server.ts'

describe.each(BACKENDS)('queue permissions, on %s', (backend) => {
  let bed: ChannelTestbed
  /** Makers of the environment: one who runs flows, one who keeps the machine, a stranger. */
  const token: Record<'requester' | 'keeper' | 'stranger', string> = {
    requester: '',
    keeper: '',
    stranger: '',
  }
  let runIds: string[] = []
  const ids: Record<string, string> = {}
  let connectionId: string
  const assignments: Record<string, string> = {}

  const as = (who: keyof typeof token, method: string, path: string, body?: unknown) =>
    api(bed.t.url, token[who], method, path, body)
  const admin = (method: string, path: string, body?: unknown) =>
    api(bed.t.url, bed.token, method, path, body)

  beforeAll(async () => {
    bed = await startChannelTestbed(backend)
    for (const who of Object.keys(token) as (keyof typeof token)[]) {
      const user = await admin('POST', '/users', { username: who, password: `${who}-password-1` })
      expect(user.status, user.text).toBe(201)
      ids[who] = user.body.id as string
      const assigned = await admin('POST', `/environments/${bed.environmentId}/role-assignments`, {
        principalType: 'user',
        principalId: ids[who],
        role: 'EnvironmentMaker',
      })
      assignments[who] = assigned.body.id as string
      token[who] = (await signIn(bed.t.url, 'default', who, `${who}-password-1`)).access_token
    }
    const { machine, flow } = bed
    for (const [who, access] of [
      ['requester', 'user'],
      ['keeper', 'coOwner'],
    ] as const) {
      const shared = await admin('POST', `/machines/${machine.machineId}/shares`, {
        principalType: 'user',
        principalId: ids[who],
        access,
      })
      expect(shared.status, shared.text).toBe(201)
    }
    await admin('POST', `/desktop-flows/${flow.id}/shares`, {
      principalType: 'user',
      principalId: ids.requester,
      access: 'user',
    })
    const connection = await as(
      'requester',
      'POST',
      `/environments/${bed.environmentId}/connections`,
      {
        name: 'requester-runner',
        target: { machineId: machine.machineId },
        username: 'runner',
        password: 'runner-password',
      },
    )
    expect(connection.body.status, connection.text).toBe('Connected')
    connectionId = connection.body.id as string
    // The machine takes nothing: the runs wait in its queue.
    await admin('PATCH', `/machines/${machine.machineId}`, { settings: { maintenanceMode: true } })
    for (let i = 0; i < 2; i++) {
      const run = await as('requester', 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId: connection.body.id,
        parentRunId: 'workflow-1',
        idempotencyKey: `requester-key-${i + 1}`,
      })
      expect(run.status, run.text).toBe(202)
      runIds.push(run.body.id as string)
    }
  })
  afterAll(async () => {
    await bed?.close()
    runIds = []
  })

  it('lets the caller change its run’s priority, not move it to the top', async () => {
    const [first, second] = runIds
    const priority = await as('requester', 'PATCH', `/runs/${second}`, { priority: 'high' })
    expect(priority.status, priority.text).toBe(200)
    expect(priority.body.priority).toBe('high')
    const top = await as('requester', 'PATCH', `/runs/${first}`, { movedToTop: true })
    expect(top.status, top.text).toBe(403)
    expect(top.body.error).toMatchObject({
      code: 'Forbidden',
      details: { requiredAccess: 'owner' },
    })
  })

  it('refuses a change that changes nothing, with what to give', async () => {
    const empty = await as('requester', 'PATCH', `/runs/${runIds[0]}`, {})
    expect(empty.status, empty.text).toBe(400)
    expect(empty.body.error.code).toBe('InvalidRequestBody')
    expect(empty.body.error.message).toContain('priority')
  })

  it('lets a co-owner of the machine see, list and reprioritize its queue, not move runs to the top or cancel them', async () => {
    const [first, second] = runIds
    expect((await as('keeper', 'GET', `/runs/${first}`)).status).toBe(200)
    const listed = await as('keeper', 'GET', `/environments/${bed.environmentId}/runs`)
    expect((listed.body.items as { id: string }[]).map((r) => r.id).sort()).toEqual(
      [...runIds].sort(),
    )
    const refused = await as('keeper', 'PATCH', `/runs/${first}`, { movedToTop: true })
    expect(refused.status, refused.text).toBe(403)
    expect(refused.body.error.details).toEqual({ requiredAccess: 'owner' })
    // The machine's owner (the administrator who registered it) may.
    const top = await admin('PATCH', `/runs/${first}`, { movedToTop: true })
    expect(top.status, top.text).toBe(200)
    expect(top.body.waiting.position).toBe(1)
    const low = await as('keeper', 'PATCH', `/runs/${second}`, { priority: 'low' })
    expect(low.status, low.text).toBe(200)
    const changes = (low.body.events as { kind: string; details: unknown }[]).filter(
      (e) => e.kind === 'queueChanged',
    )
    // Each change says who made it.
    expect(changes.map((e) => e.details)).toEqual([
      { priority: 'high', by: { type: 'user', id: ids.requester, name: 'requester' } },
      { priority: 'low', by: { type: 'user', id: ids.keeper, name: 'keeper' } },
    ])
    const cancel = await as('keeper', 'POST', `/runs/${first}/cancel`)
    expect(cancel.status, cancel.text).toBe(403)
    const parent = await as(
      'keeper',
      'POST',
      `/environments/${bed.environmentId}/runs/cancel-parent`,
      {
        parentRunId: 'workflow-1',
      },
    )
    expect(parent.body).toEqual({ cancelled: 0, runIds: [] })
    // What they were refused is in the audit log, with who asked.
    const storage = openStorage(bed.t.database.url)
    try {
      const denied = await storage.db
        .selectFrom('audit_events')
        .select(['action', 'actor_id'])
        .where('target_id', '=', first)
        .where('outcome', '=', 'denied')
        .execute()
      expect(denied.map((e) => `${e.action}:${e.actor_id}`).sort()).toEqual(
        [
          `run.cancel:${ids.keeper}`,
          `run.update:${ids.keeper}`,
          // The caller's own move to the top, refused in the first test.
          `run.update:${ids.requester}`,
        ].sort(),
      )
    } finally {
      await storage.close()
    }
  })

  it('hides the runs from anyone else', async () => {
    const [first] = runIds
    expect((await as('stranger', 'GET', `/runs/${first}`)).status).toBe(404)
    expect((await as('stranger', 'PATCH', `/runs/${first}`, { priority: 'low' })).status).toBe(404)
    expect((await as('stranger', 'POST', `/runs/${first}/cancel`)).status).toBe(404)
    const listed = await as('stranger', 'GET', `/environments/${bed.environmentId}/runs`)
    expect(listed.body.items).toEqual([])
  })

  it('lets the caller cancel its runs', async () => {
    for (const runId of runIds) {
      const cancelled = await as('requester', 'POST', `/runs/${runId}/cancel`)
      expect(cancelled.status, cancelled.text).toBe(200)
      expect(cancelled.body.status).toBe('Cancelled')
    }
  })

  it('hides its runs from the caller once it has no role left in the environment', async () => {
    const [first] = runIds
    expect((await as('requester', 'GET', `/runs/${first}`)).status).toBe(200)
    const removed = await admin(
      'DELETE',
      `/environments/${bed.environmentId}/role-assignments/${assignments.requester}`,
    )
    expect(removed.status, removed.text).toBe(204)
    const unknown = await as('requester', 'GET', `/runs/${crypto.randomUUID()}`)
    // Not even by retrying the request that made it.
    const retried = await as('requester', 'POST', `/desktop-flows/${bed.flow.id}/runs`, {
      connectionId,
      parentRunId: 'workflow-1',
      idempotencyKey: 'requester-key-1',
    })
    expect(retried.status, retried.text).toBe(404)
    expect(retried.body.error).toEqual(unknown.body.error)
    for (const [method, path] of [
      ['GET', `/runs/${first}`],
      ['POST', `/runs/${first}/cancel`],
      ['PATCH', `/runs/${first}`],
    ] as const) {
      const answer = await as(
        'requester',
        method,
        path,
        method === 'PATCH' ? { priority: 'low' } : undefined,
      )
      expect(answer.status, `${method} ${path}`).toBe(404)
      expect(answer.body.error).toEqual(unknown.body.error)
    }
  })
})
