/**
 * The run queue with a real server process (`desklink server`) and a real agent process: each
 * ordering rule (moved to top, most recent move first; priority; request time), priority change
 * and undoing a move, a run refused only for its user's session (failed at once, or passed with
 * extended prioritization), an offline machine, why a queued run waits, queue timeouts, cancel
 * while queued and by parent, idempotent retries, synchronous mode, callbacks, each admission
 * code, and the run owner's check at dispatch. What the server stores for a run, and a database
 * error during the run owner's check, are watched statement by statement in
 * `run-queue-statements.test.ts`, with the server in the test's process.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { assertBuilt, waitFor } from '../support/cli-process.ts'
import { insertConnectionRow } from '../support/connection-rows.ts'
import { createTestCa, type TestCa } from '../support/fakes/test-ca.ts'
import { skipReason } from '../support/os-users.ts'
import { type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun, waitingWith } from '../support/runs.ts'
import { startServerProcess } from '../support/server-process.ts'
import { api, type TestServer } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv'])
if (reason) process.stderr.write(`run queue suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('the run queue (real agent)', () => {
  let t: TestServer
  let m: RunMachine
  let flowId: string
  const run = (body: Record<string, unknown> = {}, flow = flowId) =>
    api(t.url, m.token, 'POST', `/desktop-flows/${flow}/runs`, {
      connectionId: m.connectionId,
      ...body,
    })
  const show = async (id: string) => (await api(t.url, m.token, 'GET', `/runs/${id}`)).body
  const settings = (changes: Record<string, unknown>) =>
    api(t.url, m.token, 'PATCH', `/environments/${m.environmentId}/run-settings`, changes)

  let ca: TestCa
  let caDir: string

  beforeAll(async () => {
    assertBuilt()
    ca = createTestCa()
    caDir = mkdtempSync(join(tmpdir(), 'desklink-callback-ca-'))
    writeFileSync(join(caDir, 'ca.pem'), ca.caPem)
    t = await startServerProcess('sqlite', {
      DESKLINK_AGENT_HEARTBEAT_MS: '500',
      DESKLINK_CALLBACK_CA_FILE: join(caDir, 'ca.pem'),
      DESKLINK_CALLBACK_ALLOWED_HOSTS: '127.0.0.1',
    })
    m = await startRunMachine(() => t.url)
    flowId = (
      await pushFlow(t.url, m.token, m.environmentId, {
        name: 'short',
        script: 'sleep 0.2\nprintf \'{"display":"%s"}\' "${DISPLAY:-}" > "$DESKLINK_OUTPUTS"',
        outputs: [{ name: 'display' }],
      })
    ).id
  })
  afterAll(async () => {
    await m?.remove()
    await t?.close()
    ca?.remove()
    if (caDir) rmSync(caDir, { recursive: true, force: true })
  })

  it('orders the queue: moved to top (latest first), then priority, then request time', async () => {
    await m.setMachine({ maintenanceMode: true, slots: 1 })
    const r1 = (await run({ priority: 'normal' })).body.id
    const r2 = (await run({ priority: 'low' })).body.id
    const r3 = (await run({ priority: 'high' })).body.id
    const r4 = (await run({ priority: 'normal' })).body.id
    const positions = async () =>
      Object.fromEntries(
        await Promise.all(
          [r1, r2, r3, r4].map(async (id) => [id, (await show(id)).waiting.position]),
        ),
      )
    expect(await positions()).toEqual({ [r3]: 1, [r1]: 2, [r4]: 3, [r2]: 4 })

    expect((await api(t.url, m.token, 'PATCH', `/runs/${r4}`, { movedToTop: true })).status).toBe(
      200,
    )
    await new Promise((r) => setTimeout(r, 5))
    await api(t.url, m.token, 'PATCH', `/runs/${r2}`, { movedToTop: true })
    expect(await positions()).toEqual({ [r2]: 1, [r4]: 2, [r3]: 3, [r1]: 4 })

    await api(t.url, m.token, 'PATCH', `/runs/${r2}`, { movedToTop: false })
    await api(t.url, m.token, 'PATCH', `/runs/${r1}`, { priority: 'high' })
    expect(await positions()).toEqual({ [r4]: 1, [r1]: 2, [r3]: 3, [r2]: 4 })

    const waiting = await show(r4)
    expect(waiting.waiting.machines).toEqual([
      expect.objectContaining({ machineId: m.machineId, code: 'MachineInMaintenance' }),
    ])

    await m.setMachine({ maintenanceMode: false })
    const ended = await Promise.all([r1, r2, r3, r4].map((id) => waitForRun(t.url, m.token, id)))
    const started = ended
      .map((r) => ({ id: r.id as string, at: r.startedAt as string }))
      .sort((a, b) => (a.at < b.at ? -1 : 1))
      .map((r) => r.id)
    expect(started).toEqual([r4, r1, r3, r2])
    expect(ended.every((r) => r.status === 'Succeeded')).toBe(true)
  })

  it('fails a run every machine refuses for its user session at once, unless extended prioritization lets it wait while the queue moves past it', async () => {
    // This machine never has a session of the connection's user.
    const refused = await waitForRun(
      t.url,
      m.token,
      (await run({ runMode: 'attended', priority: 'high' })).body.id,
    )
    expect(refused).toMatchObject({
      status: 'Failed',
      error: {
        code: 'NoCandidateMachine',
        details: { subErrors: [{ machineId: m.machineId, code: 'AttendedUserNotLoggedIn' }] },
      },
    })
    expect(refused.error.message).toContain('extended queue prioritization')
    expect(Date.parse(refused.finishedAt) - Date.parse(refused.requestedAt)).toBeLessThan(10_000)

    await m.setMachine({ extendedQueuePrioritization: true })
    try {
      const attended = (await run({ runMode: 'attended', priority: 'high' })).body.id
      await waitForRun(t.url, m.token, attended, waitingWith('AttendedUserNotLoggedIn'))
      const unattended = (await run({ priority: 'low' })).body.id
      expect((await waitForRun(t.url, m.token, unattended)).status).toBe('Succeeded')
      expect(await show(attended)).toMatchObject({ status: 'Queued', waiting: { position: 1 } })
      const cancelled = await api(t.url, m.token, 'POST', `/runs/${attended}/cancel`)
      expect(cancelled.body).toMatchObject({ status: 'Cancelled' })
    } finally {
      await m.setMachine({ extendedQueuePrioritization: false })
    }
  })

  it('makes runs wait while the machine is offline, and runs them in queue order once it is back', async () => {
    await m.agent.stop()
    let first: string, head: string
    try {
      first = (await run()).body.id
      await waitForRun(t.url, m.token, first, waitingWith('NoListenerConnected'))
      head = (await run({ priority: 'high' })).body.id
      // Behind the head, each machine's verdict now (no pass looks past the head).
      expect(await show(first)).toMatchObject({
        status: 'Queued',
        waiting: {
          position: 2,
          machines: [{ machineId: m.machineId, code: 'NoListenerConnected' }],
          blockedBy: head,
        },
      })
    } finally {
      await m.restartAgent()
    }
    const ended = await Promise.all([head, first].map((id) => waitForRun(t.url, m.token, id)))
    expect(ended.map((r) => r.status)).toEqual(['Succeeded', 'Succeeded'])
    expect(Date.parse(ended[0].startedAt)).toBeLessThanOrEqual(Date.parse(ended[1].startedAt))
  })

  it("fails a run that waits past the queue timeout with NoCandidateMachine and each machine's reason", async () => {
    await settings({ queueTimeoutSeconds: 1 })
    await m.setMachine({ maintenanceMode: true })
    try {
      const id = (await run()).body.id
      const failed = await waitForRun(t.url, m.token, id)
      expect(failed.error).toMatchObject({
        code: 'NoCandidateMachine',
        message: 'No machine able to run the desktop flow has been found.',
        details: { subErrors: [expect.objectContaining({ code: 'MachineInMaintenance' })] },
      })
    } finally {
      await settings({ queueTimeoutSeconds: 6 * 3600 })
      await m.setMachine({ maintenanceMode: false })
    }
  })

  it('fails a waiting run with FlowNotFound when its flow is deleted', async () => {
    const doomed = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'doomed',
      script: 'true',
    })
    // It ran once, so nothing about it is news to the server.
    const before = await waitForRun(t.url, m.token, (await run({}, doomed.id)).body.id)
    expect(before.status).toBe('Succeeded')
    await m.setMachine({ maintenanceMode: true })
    try {
      const waiting = await run({}, doomed.id)
      expect(waiting.status, waiting.text).toBe(202)
      expect((await api(t.url, m.token, 'DELETE', `/desktop-flows/${doomed.id}`)).status).toBe(204)
    } finally {
      await m.setMachine({ maintenanceMode: false })
    }
    const ended = await waitFor(async () => {
      const listed = await api(t.url, m.token, 'GET', `/environments/${m.environmentId}/runs`)
      const mine = (listed.body.items as { flowId: string; status: string }[]).find(
        (r) => r.flowId === doomed.id,
      )
      return mine?.status === 'Failed' ? mine : undefined
    }, 'the run of the deleted flow failed')
    expect(ended).toMatchObject({ flowName: '(deleted)', error: { code: 'FlowNotFound' } })
  })

  it('cancels queued runs one by one and by parent', async () => {
    await m.setMachine({ maintenanceMode: true })
    try {
      const alone = (await run()).body.id
      const a = (await run({ parentRunId: 'workflow-7' })).body.id
      const b = (await run({ parentRunId: 'workflow-7' })).body.id
      // The list shows each run as reading it alone does (flow, events, place in the queue).
      const listed = await api(
        t.url,
        m.token,
        'GET',
        `/environments/${m.environmentId}/runs?parentRunId=workflow-7`,
      )
      const items = listed.body.items as { id: string }[]
      expect(items).toHaveLength(2)
      expect(items).toEqual(expect.arrayContaining([await show(a), await show(b)]))
      expect(items.find((item) => item.id === a)).toMatchObject({
        flowName: 'short',
        waiting: { position: 2 },
        events: [{ kind: 'queued' }],
      })
      expect((await api(t.url, m.token, 'POST', `/runs/${alone}/cancel`)).body.status).toBe(
        'Cancelled',
      )
      const parent = await api(
        t.url,
        m.token,
        'POST',
        `/environments/${m.environmentId}/runs/cancel-parent`,
        { parentRunId: 'workflow-7' },
      )
      expect(parent.body).toEqual({ cancelled: 2, runIds: expect.arrayContaining([a, b]) })
      expect((await show(a)).status).toBe('Cancelled')
      expect((await show(b)).status).toBe('Cancelled')
    } finally {
      await m.setMachine({ maintenanceMode: false })
    }
  })

  it("cancels a parent's running runs too, and leaves those that ended", async () => {
    const sleeps = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'sleeps',
      script: 'sleep 30',
    })
    const ended = (await run({ parentRunId: 'workflow-9' })).body.id
    expect((await waitForRun(t.url, m.token, ended)).status).toBe('Succeeded')
    const running = (await run({ parentRunId: 'workflow-9' }, sleeps.id)).body.id
    await waitForRun(t.url, m.token, running, (r) => r.status === 'Running')
    const parent = await api(
      t.url,
      m.token,
      'POST',
      `/environments/${m.environmentId}/runs/cancel-parent`,
      { parentRunId: 'workflow-9' },
    )
    expect(parent.body).toEqual({ cancelled: 1, runIds: [running] })
    expect(await show(running)).toMatchObject({ status: 'Cancelled' })
    expect(await show(ended)).toMatchObject({ status: 'Succeeded' })
  })

  it('answers a retried request with the same idempotency key with the same run', async () => {
    const key = randomUUID()
    const first = await run({ idempotencyKey: key })
    const again = await run({ idempotencyKey: key })
    expect(first.status).toBe(202)
    expect(again.status).toBe(200)
    expect(again.body.id).toBe(first.body.id)
    await waitForRun(t.url, m.token, first.body.id)
    // The same key for another request is refused, and names the run and what differs.
    const other = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'other',
      script: 'true',
      inputs: [{ name: 'label' }, { name: 'secret', sensitive: true }],
    })
    for (const [flow, body, differs] of [
      [other.id, {}, ['flowId']],
      [flowId, { runMode: 'attended', parentRunId: 'another-parent' }, ['runMode', 'parentRunId']],
    ] as const) {
      const reused = await run({ idempotencyKey: key, ...body }, flow)
      expect(reused.status, reused.text).toBe(422)
      expect(reused.body.error).toMatchObject({
        code: 'IdempotencyKeyReused',
        details: { runId: first.body.id, differs },
      })
    }
    // Inputs are compared as shown: sensitive ones are sealed for the machine and cannot be.
    const inputsKey = randomUUID()
    const made = await run(
      { idempotencyKey: inputsKey, inputs: { label: 'a', secret: 's1' } },
      other.id,
    )
    expect(made.status, made.text).toBe(202)
    const sameShown = await run(
      { idempotencyKey: inputsKey, inputs: { label: 'a', secret: 's2' } },
      other.id,
    )
    expect(sameShown.status, sameShown.text).toBe(200)
    const otherLabel = await run({ idempotencyKey: inputsKey, inputs: { label: 'b' } }, other.id)
    expect(otherLabel.body.error).toMatchObject({
      code: 'IdempotencyKeyReused',
      details: { runId: made.body.id, differs: ['inputs'] },
    })
    await waitForRun(t.url, m.token, made.body.id)
  })

  /** An HTTPS endpoint on 127.0.0.1 that answers each callback with `answer(try)`. */
  async function callbackHook(answer: (attempt: number) => number) {
    const received: { status: string; id: string; at: number }[] = []
    const { certPem, keyPem } = ca.issueServerCertificate()
    const hook = createHttpsServer({ cert: certPem, key: keyPem }, (req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        received.push({ ...(JSON.parse(body) as { status: string; id: string }), at: Date.now() })
        res.writeHead(answer(received.length)).end()
      })
    })
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
    return { received, port: (hook.address() as { port: number }).port, close: () => hook.close() }
  }

  it('calls the callback URL once the run ended, retrying after a 5xx', async () => {
    // The first try fails: the second comes a second later.
    const { received, port, close } = await callbackHook((attempt) => (attempt === 1 ? 503 : 204))
    try {
      // By host name: the address it resolves to (127.0.0.1) is the one allowed and connected to.
      const started = await run({ callbackUrl: `https://localhost:${port}/hooks/run` })
      await waitFor(() => received.length === 2, 'two callback tries')
      expect(received.map((r) => [r.id, r.status])).toEqual([
        [started.body.id, 'Succeeded'],
        [started.body.id, 'Succeeded'],
      ])
      expect(received[1].at - received[0].at).toBeGreaterThanOrEqual(950)
      const done = await waitForRun(t.url, m.token, started.body.id, (r) =>
        (r.events as { kind: string }[]).some((e) => e.kind === 'callback'),
      )
      expect(done.events.at(-1)).toMatchObject({
        kind: 'callback',
        details: { delivered: true, tries: 2, lastStatus: 204 },
      })
    } finally {
      close()
    }
  })

  it('gives a callback up after three tries that timed out (408)', async () => {
    const { received, port, close } = await callbackHook(() => 408)
    try {
      const started = await run({ callbackUrl: `https://localhost:${port}/hooks/run` })
      const done = await waitForRun(t.url, m.token, started.body.id, (r) =>
        (r.events as { kind: string }[]).some((e) => e.kind === 'callback'),
      )
      expect(done.events.at(-1)).toMatchObject({
        kind: 'callback',
        details: { delivered: false, tries: 3, lastStatus: 408 },
      })
      expect(received).toHaveLength(3)
      // No fourth try comes later.
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      expect(received).toHaveLength(3)
    } finally {
      close()
    }
  })

  it('refuses a callback URL with a bare IP address, unless it is allowed', async () => {
    const bare = await run({ callbackUrl: 'https://203.0.113.7/hooks/run' })
    expect(bare.status, bare.text).toBe(400)
    expect(bare.body.error).toMatchObject({
      code: 'InvalidRequestBody',
      details: { field: 'callbackUrl' },
    })
    expect(bare.body.error.message).toContain('DNS name')
    // A name that resolves to an internal address is refused when the callback is made
    // (test/cli/run-commands.test.ts, whose server allows none).
  })

  it('refuses a callback URL that is not HTTPS', async () => {
    const plain = await run({ callbackUrl: 'http://127.0.0.1:1/hook' })
    expect(plain.status).toBe(400)
    expect(plain.body.error.code).toBe('InvalidRequestBody')
  })

  it('waits for the end in synchronous mode', async () => {
    const done = await run({ wait: true })
    expect(done.status).toBe(200)
    expect(done.body).toMatchObject({ status: 'Succeeded', machineCredentialUser: m.account.name })
  })

  it('refuses with the reference codes: throttled, queue full', async () => {
    await settings({ runsPerMinutePerConnection: 1 })
    try {
      const throttled = await run()
      expect(throttled.status).toBe(429)
      expect(throttled.body.error.code).toBe('DesktopFlowsActionThrottled')
      // The runs of the last minute: the oldest leaves it within 60 s.
      const retryAfter = Number(throttled.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
    } finally {
      await settings({ runsPerMinutePerConnection: 70 })
    }
    await m.setMachine({ maintenanceMode: true })
    await settings({ maxQueuedRuns: 1 })
    try {
      const first = await run()
      expect(first.status).toBe(202)
      const full = await run()
      expect(full.status).toBe(409)
      expect(full.body.error).toMatchObject({
        code: 'UIFlowRunQueueFull',
        message: "The desktop flow run queue is full. Run queue max size: '1'",
      })
      await api(t.url, m.token, 'POST', `/runs/${first.body.id}/cancel`)
    } finally {
      await settings({ maxQueuedRuns: 500 })
      await m.setMachine({ maintenanceMode: false })
    }
  })

  it('never lets a burst of requests overfill the queue', async () => {
    await m.setMachine({ maintenanceMode: true })
    await settings({ maxQueuedRuns: 3 })
    const answers = await Promise.all(Array.from({ length: 8 }, () => run()))
    try {
      expect(answers.map((a) => a.status).sort()).toEqual([202, 202, 202, 409, 409, 409, 409, 409])
      for (const refused of answers.filter((a) => a.status === 409))
        expect(refused.body.error.code).toBe('UIFlowRunQueueFull')
    } finally {
      for (const admitted of answers.filter((a) => a.status === 202))
        await api(t.url, m.token, 'POST', `/runs/${admitted.body.id}/cancel`)
      await settings({ maxQueuedRuns: 500 })
      await m.setMachine({ maintenanceMode: false })
    }
  })

  it('refuses an empty or missing target and unattended sign-in runs', async () => {
    const group = await api(t.url, m.token, 'POST', '/machine-groups', {
      environmentId: m.environmentId,
      name: `empty-${randomUUID().slice(0, 8)}`,
    })
    const storage = openStorage(t.database.url)
    const me = (await api(t.url, m.token, 'GET', '/me')).body
    const owner = { tenantId: me.tenant.id, environmentId: m.environmentId, userId: me.id }
    const fixture = (targetGroupId: string, type: 'password' | 'signIn') =>
      insertConnectionRow(storage.db, owner, targetGroupId, { type })
    try {
      const empty = await run({ connectionId: await fixture(group.body.id, 'password') })
      expect(empty.status).toBe(400)
      expect(empty.body.error.code).toBe('GroupIsEmpty')
      const gone = await run({ connectionId: await fixture(randomUUID(), 'password') })
      expect(gone.status).toBe(404)
      expect(gone.body.error.code).toBe('XrmMachineGroupNotFound')
      const standalone = (await api(t.url, m.token, 'GET', `/machines/${m.machineId}`)).body
        .standaloneGroupId
      const signIn = await run({ connectionId: await fixture(standalone, 'signIn') })
      expect(signIn.status).toBe(400)
      expect(signIn.body.error.code).toBe('RunModeNotAllowedForConnection')
    } finally {
      await storage.close()
    }
  })

  it('checks the run owner at admission, and again when a waiting run is about to go', async () => {
    const sp = await api(t.url, m.token, 'POST', '/service-principals', { name: 'run-owner-sp' })
    await api(t.url, m.token, 'POST', `/environments/${m.environmentId}/role-assignments`, {
      principalType: 'servicePrincipal',
      principalId: sp.body.id,
      role: 'EnvironmentMaker',
    })
    const pair = await generateKeyPair('ES256', { extractable: true })
    await api(t.url, m.token, 'POST', `/service-principals/${sp.body.id}/certificates`, {
      publicKey: await exportSPKI(pair.publicKey),
    })
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(sp.body.id)
      .setSubject(sp.body.id)
      .setAudience(`connection:${m.connectionId}`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(pair.privateKey)
    const owned = await api(t.url, m.token, 'PUT', `/connections/${m.connectionId}/run-owner`, {
      servicePrincipalId: sp.body.id,
      assertion,
    })
    expect(owned.status).toBe(200)
    const refused = await run()
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe('RunOwnerLacksAccess')

    const flowShare = await api(t.url, m.token, 'POST', `/desktop-flows/${flowId}/shares`, {
      principalType: 'servicePrincipal',
      principalId: sp.body.id,
      access: 'user',
    })
    expect(flowShare.status, flowShare.text).toBe(201)
    const machineShare = await api(t.url, m.token, 'POST', `/machines/${m.machineId}/shares`, {
      principalType: 'servicePrincipal',
      principalId: sp.body.id,
      access: 'user',
    })
    expect(machineShare.status, machineShare.text).toBe(201)
    const admitted = await run()
    expect(admitted.status, admitted.text).toBe(202)
    const ended = await waitForRun(t.url, m.token, admitted.body.id)
    expect(ended).toMatchObject({
      status: 'Succeeded',
      runOwnerType: 'servicePrincipal',
      runOwnerId: sp.body.id,
      callerId: (await api(t.url, m.token, 'GET', '/me')).body.id,
    })

    // Admitted while the run owner may run it, then its access to the flow, or to the
    // machine, is taken away while the run waits: when the machine is free, the run fails.
    for (const share of [
      `/desktop-flows/${flowId}/shares/${flowShare.body.id}`,
      `/machines/${m.machineId}/shares/${machineShare.body.id}`,
    ]) {
      await m.setMachine({ maintenanceMode: true, slots: 1 })
      const waiting = await run()
      expect(waiting.status, waiting.text).toBe(202)
      const unshared = await api(t.url, m.token, 'DELETE', share)
      expect(unshared.status, unshared.text).toBe(204)
      // A granted check stands for two seconds (docs/runs.md); after that it is made again.
      await new Promise((resolve) => setTimeout(resolve, 2_500))
      await m.setMachine({ maintenanceMode: false, slots: 1 })
      // It fails rather than wait: no machine can change the run owner's rights, and waiting it
      // would hold up the runs behind it.
      const refusedAtDispatch = await waitForRun(t.url, m.token, waiting.body.id)
      expect(refusedAtDispatch).toMatchObject({
        status: 'Failed',
        startedAt: null,
        error: { code: 'RunOwnerLacksAccess' },
      })
      // The flow back: only the machine is missing next time.
      if (share.startsWith('/desktop-flows')) {
        const again = await api(t.url, m.token, 'POST', `/desktop-flows/${flowId}/shares`, {
          principalType: 'servicePrincipal',
          principalId: sp.body.id,
          access: 'user',
        })
        expect(again.status, again.text).toBe(201)
      }
    }
  })
})
