/**
 * The queue from the command line, as the built `desklink` command: runs requested with a
 * parent run id and a callback URL, listed by parent, their priority changed, moved to the top
 * and back, every run of the parent cancelled; errors with what to fix (details as lines, the
 * API body with --json), names instead of ids, Ctrl+C while `desklink run` waits; a flow shared
 * and unshared; an environment's run limits shown and changed; a credential shared with the
 * same verbs. Against a real server, with a test machine in maintenance so that runs wait.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { type ChannelTestbed, startChannelTestbed } from '../support/channel-testbed.ts'
import { assertBuilt, desklink, spawnDesklink, waitFor } from '../support/cli-process.ts'
import { signInCli } from '../support/cli-sign-in.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { api, signIn } from '../support/test-server.ts'

// Each step starts the real `desklink` process (about half a second each, more on a busy
// machine), and a test takes twenty or thirty of them.
const MANY_COMMANDS = { timeout: 120_000 }

describe('desklink runs and flows sharing, from the command line', () => {
  let bed: ChannelTestbed
  let configDir: string

  /** Runs the CLI signed in as the administrator; `--json` output parsed. */
  const cli = (args: string[]) => desklink(args, { env: { DESKLINK_CONFIG_DIR: configDir } })
  const json = async (args: string[]) => {
    const ran = await cli([...args, '--json'])
    expect(ran.code, ran.stderr).toBe(0)
    return JSON.parse(ran.stdout) as Record<string, unknown>
  }
  const waiting = async (runId: string) =>
    ((await json(['runs', 'show', runId])).waiting as { position: number }).position

  beforeAll(async () => {
    assertBuilt()
    bed = await startChannelTestbed('sqlite')
    configDir = await signInCli(bed.t.url)
  })
  afterAll(async () => {
    await bed?.close()
    if (configDir) rmSync(configDir, { recursive: true, force: true })
  })

  it('reorders queued runs and cancels every run of a parent', MANY_COMMANDS, async () => {
    const { t, token, machine, flow, connectionId } = bed
    const maintenance = await api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { maintenanceMode: true },
    })
    expect(maintenance.status, maintenance.text).toBe(200)
    const request = () =>
      json([
        'run',
        flow.id,
        '--connection',
        connectionId,
        '--no-wait',
        '--parent-run-id',
        'workflow-7',
        // Refused when called (an internal address): the run's events say so.
        '--callback-url',
        // A name that resolves to an internal address: refused when the callback is made.
        'https://localhost:9/hooks/run',
      ])
    // Of no parent: never listed with the parent's runs.
    const unrelated = (await json(['run', flow.id, '--connection', connectionId, '--no-wait']))
      .id as string
    const first = (await request()).id as string
    const second = (await request()).id as string
    expect([await waiting(unrelated), await waiting(first), await waiting(second)]).toEqual([
      1, 2, 3,
    ])
    await json(['runs', 'cancel', unrelated])
    expect([await waiting(first), await waiting(second)]).toEqual([1, 2])
    // The queue at a glance: the flow's queued runs, newest first, with their places.
    const queue = await cli(['runs', 'list', '--flow', 'picky', '--status', 'queued'])
    expect(queue.stdout).toMatch(/^ID\s+FLOW\s+STATUS\s+POSITION\s+PRIORITY/m)
    expect(queue.stdout).toMatch(new RegExp(`^${second}\\s+picky\\s+Queued\\s+2\\s+normal`, 'm'))
    expect(queue.stdout).toMatch(new RegExp(`^${first}\\s+picky\\s+Queued\\s+1\\s+normal`, 'm'))
    const newest = await json(['runs', 'list', '--connection', 'picky', '--limit', '1'])
    expect((newest as unknown as { id: string }[]).map((r) => r.id)).toEqual([second])
    // A request retried with its idempotency key: the same run, and the CLI says so.
    const keyed = ['run', flow.id, '--connection', connectionId, '--no-wait']
    const once = await cli([...keyed, '--idempotency-key', 'nightly-7'])
    expect(once.stderr).not.toContain('earlier request')
    const twice = await cli([...keyed, '--idempotency-key', 'nightly-7'])
    expect(twice.code, twice.stderr).toBe(0)
    expect(twice.stderr).toContain('was started by an earlier request with this idempotency key')
    const keyedId = /^id:\s+(\S+)$/m.exec(once.stdout)?.[1]
    expect(keyedId).toBeDefined()
    expect(twice.stdout).toContain(keyedId)
    // With --json, stdout is the run alone and the notice still comes, on stderr.
    const asJson = await cli([...keyed, '--idempotency-key', 'nightly-7', '--json'])
    expect(asJson.code, asJson.stderr).toBe(0)
    expect((JSON.parse(asJson.stdout) as { id: string }).id).toBe(keyedId)
    expect(asJson.stderr).toContain('was started by an earlier request with this idempotency key')
    await json(['runs', 'cancel', keyedId ?? ''])
    // Read by a person: where it stands, and why the machine does not take it.
    const head = await cli(['runs', 'show', first])
    expect(head.stdout).toMatch(/^position:\s+1$/m)
    expect(head.stdout).toMatch(/^waitingFor:\s+.*maintenance/im)
    expect(head.stdout).toMatch(/^events:\n {2}\S+ {2}queued/m)
    const behind = await cli(['runs', 'show', second])
    expect(behind.stdout).toMatch(/^position:\s+2$/m)
    expect(behind.stdout).toContain(`behind run ${first}`)
    expect(behind.stdout).toMatch(/^waitingFor:.*\(MachineInMaintenance\)/m)

    // Priorities in any case; the answer names the run owner, as runs show does.
    const raised = await cli(['runs', 'set-priority', second, 'High'])
    expect(raised.code, raised.stderr).toBe(0)
    expect(raised.stdout).toMatch(/^priority:\s+high$/m)
    expect(raised.stdout).toMatch(/^runOwner:\s+user admin \(/m)
    expect([await waiting(first), await waiting(second)]).toEqual([2, 1])

    expect((await json(['runs', 'move-to-top', first])).movedToTopAt).not.toBeNull()
    expect([await waiting(first), await waiting(second)]).toEqual([1, 2])
    expect((await json(['runs', 'move-to-top', first, '--undo'])).movedToTopAt).toBeNull()
    expect([await waiting(first), await waiting(second)]).toEqual([2, 1])

    // Refused before anything is sent: a usage error.
    const wrong = await cli(['runs', 'set-priority', second, 'urgent'])
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain("priority takes high, normal, low, not 'urgent'")

    const ofParent = await json(['runs', 'list', '--parent-run-id', 'workflow-7'])
    expect((ofParent as unknown as { id: string }[]).map((r) => r.id).sort()).toEqual(
      [first, second].sort(),
    )
    expect(
      await json(['runs', 'cancel-parent', 'workflow-7', '--environment', bed.environmentId]),
    ).toEqual({ cancelled: 2, runIds: expect.arrayContaining([first, second]) })
    // A run no longer queued says what it is; one that does not exist says it is a run.
    const late = await cli(['runs', 'set-priority', first, 'low'])
    expect(late.code).toBe(1)
    expect(late.stderr).toContain('this run is Cancelled')
    const unknown = await cli(['runs', 'show', '00000000-0000-7000-8000-000000000000'])
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toContain('No run 00000000-0000-7000-8000-000000000000 that you may see')
    // Nothing of that parent left to cancel: said so, and not an error.
    const none = await cli(['runs', 'cancel-parent', 'workflow-7'])
    expect(none.code).toBe(0)
    expect(none.stdout).toMatch(/^cancelled:\s+0$/m)
    expect(none.stderr).toContain("No queued or running run of parent 'workflow-7'")
    for (const runId of [first, second]) {
      const ended = await waitForRun(t.url, token, runId, (r) =>
        (r.events as { kind: string }[]).some((e) => e.kind === 'callback'),
      )
      expect(ended.status).toBe('Cancelled')
      expect(ended.parentRunId).toBe('workflow-7')
      expect(ended.events.at(-1)).toMatchObject({
        kind: 'callback',
        details: { delivered: false, refused: expect.stringContaining('internal') },
      })
    }
  })

  it(
    'says what to fix: the details of an error, as lines or as the API body',
    MANY_COMMANDS,
    async () => {
      const environment = ['--environment', bed.environmentId]
      const above = await cli(['runs', 'settings', ...environment, '--max-input-bytes', '3000000'])
      expect(above.code).toBe(1)
      expect(above.stderr).toMatch(/^Error \(InvalidRequestBody\): .*Fix the fields listed/m)
      expect(above.stderr).toMatch(/^ {2}--max-input-bytes: .*2097152/m)
      const asJson = await cli([
        'runs',
        'settings',
        ...environment,
        '--max-input-bytes',
        '3000000',
        '--json',
      ])
      const body = JSON.parse(asJson.stderr)
      expect(body).toMatchObject({
        error: {
          code: 'InvalidRequestBody',
          details: { issues: [{ path: 'maxRunInputBytes', message: expect.any(String) }] },
        },
        requestId: expect.any(String),
      })

      const flow = await api(
        bed.t.url,
        bed.token,
        'POST',
        `/environments/${bed.environmentId}/desktop-flows`,
        {
          manifest: {
            name: 'counted',
            runtime: 'shell',
            entry: 'main.sh',
            inputs: [{ name: 'times', type: 'number', required: true }],
          },
          files: [{ path: 'main.sh', contentBase64: Buffer.from('true').toString('base64') }],
        },
      )
      expect(flow.status, flow.text).toBe(201)
      // By name, in the caller's first environment: no --environment needed.
      // Typed as the flow declares it: not a number is a usage error, and nothing is sent.
      const inputs = await cli(['run', 'counted', '--connection', 'picky', '--input', 'times=abc'])
      expect(inputs.code).toBe(2)
      expect(inputs.stderr).toMatch(/^Error \(InvalidOption\): --input times takes a number/m)
      // The server's own check, for what --inputs-file gives: each input and what is wrong.
      const typedWrong = await desklink(
        ['run', 'counted', '--connection', 'picky', '--inputs-file', '-'],
        { env: { DESKLINK_CONFIG_DIR: configDir }, stdin: '{"times": "abc"}' },
      )
      expect(typedWrong.code).toBe(1)
      expect(typedWrong.stderr).toContain('Error (InvalidFlowInputs)')
      expect(typedWrong.stderr).toMatch(/^ {2}times: must be of type number$/m)
      // Inputs from standard input keep values off the command line; --input adds and wins.
      const fromStdin = await desklink(
        ['run', 'counted', '--connection', 'picky', '--inputs-file', '-', '--no-wait', '--json'],
        { env: { DESKLINK_CONFIG_DIR: configDir }, stdin: '{"times": 3}' },
      )
      expect(fromStdin.code, fromStdin.stderr).toBe(0)
      expect(JSON.parse(fromStdin.stdout).inputs).toEqual({ times: 3 })
      await json(['runs', 'cancel', JSON.parse(fromStdin.stdout).id])
      const notAnObject = await desklink(
        ['run', 'counted', '--connection', 'picky', '--inputs-file', '-'],
        { env: { DESKLINK_CONFIG_DIR: configDir }, stdin: '[1, 2]' },
      )
      expect(notAnObject.code).toBe(2)
      expect(notAnObject.stderr).toContain('--inputs-file must hold one JSON object')

      // Environments by name too.
      const byName = (await json(['flows', 'list', '--environment', 'default'])) as unknown as {
        name: string
      }[]
      expect(byName.map((f) => f.name)).toContain('counted')
      const slots = await cli(['machines', 'update', 'picky', '--slots', 'abc'])
      expect(slots.code).toBe(2)
      expect(slots.stderr).toContain("--slots takes a whole number of 1 or more, not 'abc'")
      const tooMany = await cli(['machines', 'update', 'picky', '--slots', '65'])
      expect(tooMany.code).toBe(1)
      expect(tooMany.stderr).toMatch(/^ {2}--slots: .*64/m)
      const http = await cli([
        'run',
        'counted',
        '--connection',
        'picky',
        '--input',
        'times=1',
        '--callback-url',
        'http://example.test/hook',
      ])
      expect(http.code).toBe(1)
      const emptyParent = await cli([
        'run',
        'counted',
        '--connection',
        'picky',
        '--parent-run-id',
        '',
      ])
      expect(emptyParent.code).toBe(1)
      expect(emptyParent.stderr).toMatch(/^ {2}--parent-run-id: /m)
      // Named by the option that set it, not the request's field.
      expect(http.stderr).toMatch(/^ {2}--callback-url: must be an https:\/\/ URL$/m)

      const empty = await cli(['flows', 'list', '--environment', ''])
      expect(empty.code).toBe(2)
      expect(empty.stderr).toContain('--environment is empty')
      // Roles in two environments: the CLI asks which, rather than pick one.
      const me = (await api(bed.t.url, bed.token, 'GET', '/me')).body
      const other = await api(bed.t.url, bed.token, 'POST', '/environments', { name: 'second' })
      expect(other.status, other.text).toBe(201)
      try {
        const role = await api(
          bed.t.url,
          bed.token,
          'POST',
          `/environments/${other.body.id}/role-assignments`,
          { principalType: 'user', principalId: me.id, role: 'EnvironmentMaker' },
        )
        expect(role.status, role.text).toBe(201)
        const which = await cli(['flows', 'list', '--json'])
        expect(which.code).toBe(2)
        expect(JSON.parse(which.stderr).error).toMatchObject({
          code: 'NoEnvironment',
          details: { environments: expect.arrayContaining([bed.environmentId, other.body.id]) },
        })
      } finally {
        await api(bed.t.url, bed.token, 'DELETE', `/environments/${other.body.id}`)
      }

      const missing = await cli(['run', 'no-such-flow', '--connection', 'picky'])
      expect(missing.code).toBe(2)
      expect(missing.stderr).toContain(
        "Error (ResourceNotFound): No desktop flow named 'no-such-flow'",
      )
      expect(missing.stderr).toContain('desklink flows list --environment')
      expect((await json(['flows', 'show', 'counted'])).id).toBe(flow.body.id)
      const shown = await cli(['flows', 'show', 'counted'])
      expect(shown.stdout).toMatch(/^inputs:\s+times:number!$/m)
      expect(shown.stdout).toMatch(/^timeout:\s+the environment's default$/m)
      expect((await json(['connections', 'show', 'picky'])).id).toBe(bed.connectionId)
      expect((await json(['machines', 'show', 'picky'])).id).toBe(bed.machine.machineId)
      expect(await json(['flows', 'shares', 'counted'])).toEqual([])
      // The share verbs look the name up: one that names nothing is a usage error.
      const unknown = await cli(['flows', 'shares', 'no-such-flow'])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain("No desktop flow named 'no-such-flow'")
      const listed = (await json(['flows', 'list'])) as unknown as { name: string }[]
      expect(listed.map((f) => f.name)).toContain('counted')

      // A folder whose manifest names an entry it does not hold: said before anything is sent.
      const folder = mkdtempSync(join(tmpdir(), 'desklink-flow-'))
      try {
        writeFileSync(
          join(folder, 'desklink-flow.json'),
          JSON.stringify({ name: 'no-entry', runtime: 'shell', entry: 'main.sh' }),
        )
        const pushed = await cli(['flows', 'push', folder])
        expect(pushed.code).toBe(2)
        expect(pushed.stderr).toContain("Error (InvalidManifest): The manifest's entry 'main.sh'")
        // Pushed again as it is, a flow says that nothing changed.
        writeFileSync(join(folder, 'main.sh'), 'true\n')
        expect((await cli(['flows', 'push', folder])).stdout).toMatch(/^pushed:\s+a new flow$/m)
        const again = await cli(['flows', 'push', folder])
        expect(again.code, again.stderr).toBe(0)
        expect(again.stdout).toMatch(/^pushed:\s+unchanged: the current version already has/m)
      } finally {
        rmSync(folder, { recursive: true, force: true })
      }
    },
  )

  it('explains a run that timed out in its queue: each machine’s reason and what to do', async () => {
    const settings = (changes: Record<string, unknown>) =>
      api(bed.t.url, bed.token, 'PATCH', `/environments/${bed.environmentId}/run-settings`, changes)
    const machine = (maintenanceMode: boolean) =>
      api(bed.t.url, bed.token, 'PATCH', `/machines/${bed.machine.machineId}`, {
        settings: { maintenanceMode },
      })
    const flow = await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'times-out-queued',
      script: 'true',
    })
    await settings({ queueTimeoutSeconds: 1 })
    await machine(true)
    try {
      const ran = await cli(['run', flow.id, '--connection', bed.connectionId])
      expect(ran.code).toBe(1)
      expect(ran.stdout).toMatch(/^error:\s+NoCandidateMachine: /m)
      // In maintenance (or found offline, on a loaded machine): its reason, with its code.
      expect(ran.stdout).toMatch(
        /^machines:\s+picky: .*\((MachineInMaintenance|NoListenerConnected)\)$/m,
      )
      expect(ran.stdout).toMatch(/^whatToDo:\s+Read each machine's reason/m)
      // Said once: the error line points to the summary above rather than repeating it.
      expect(ran.stderr).toContain(`Error (NoCandidateMachine): Run `)
      expect(ran.stderr).not.toContain('desklink runs settings --queue-timeout')
      // With --json, the error itself carries the fix and each machine's reason: the last line
      // of stderr, after what was said while it waited.
      const asJson = await cli(['run', flow.id, '--connection', bed.connectionId, '--json'])
      expect(asJson.code).toBe(1)
      expect(asJson.stderr).toMatch(/^Queued \(position 1\)/m)
      const { error } = JSON.parse(asJson.stderr.trimEnd().split('\n').at(-1) ?? '') as {
        error: { code: string; message: string; details: { subErrors: unknown[] } }
      }
      expect(error.code).toBe('NoCandidateMachine')
      expect(error.message).toContain('desklink runs settings --queue-timeout')
      expect(error.details.subErrors).toHaveLength(1)
    } finally {
      await settings({ queueTimeoutSeconds: 6 * 3600 })
      await machine(false)
    }
  })

  it('stops waiting on Ctrl+C and says how to follow or cancel the run, which goes on', async () => {
    const { t, token, machine, flow } = bed
    await api(t.url, token, 'PATCH', `/machines/${machine.machineId}`, {
      settings: { maintenanceMode: true },
    })
    const waiter = spawnDesklink(['run', flow.id, '--connection', 'picky'], {
      DESKLINK_CONFIG_DIR: configDir,
    })
    try {
      const runId = await waitFor(
        () => /^Run (\S+)$/m.exec(waiter.output())?.[1],
        'the run id, before waiting',
      )
      await waitFor(() => waiter.output().includes('Queued (position 1)'), 'the queued line')
      waiter.child.kill('SIGINT')
      expect(await waiter.exited()).toBe(130)
      expect(waiter.output()).toContain(`Error (StoppedWaiting): Stopped waiting; run ${runId}`)
      expect(waiter.output()).toContain(`desklink runs cancel ${runId}`)
      expect((await api(t.url, token, 'GET', `/runs/${runId}`)).body.status).toBe('Queued')
      expect((await json(['runs', 'cancel', runId])).status).toBe('Cancelled')
    } finally {
      await waiter.stop()
    }
    const noWait = await cli(['run', flow.id, '--connection', 'picky', '--no-wait'])
    expect(noWait.code, noWait.stderr).toBe(0)
    const queuedId = /^id:\s+(\S+)$/m.exec(noWait.stdout)?.[1]
    expect(noWait.stderr).toContain(`Follow it with: desklink runs show ${queuedId}`)
    await cli(['runs', 'cancel', queuedId ?? ''])
  })

  it('shares a flow and a credential with a user, and stops', MANY_COMMANDS, async () => {
    const { t, token, flow } = bed
    const peer = await api(t.url, token, 'POST', '/users', {
      username: 'flow-peer',
      password: 'flow-peer-password',
    })
    expect(peer.status, peer.text).toBe(201)
    // A maker of the environment: sees the flows it made or that are shared with it.
    const role = await api(
      t.url,
      token,
      'POST',
      `/environments/${bed.environmentId}/role-assignments`,
      {
        principalType: 'user',
        principalId: peer.body.id,
        role: 'EnvironmentMaker',
      },
    )
    expect(role.status, role.text).toBe(201)
    const share = await json([
      'flows',
      'share',
      flow.id,
      '--user',
      peer.body.id,
      '--access',
      'user',
    ])
    expect(share).toMatchObject({
      principalType: 'user',
      principalId: peer.body.id,
      access: 'user',
    })
    const listed = await cli(['flows', 'shares', flow.id, '--json'])
    expect(JSON.parse(listed.stdout)).toEqual([share])
    const peerToken = (await signIn(t.url, 'default', 'flow-peer', 'flow-peer-password'))
      .access_token
    expect((await api(t.url, peerToken, 'GET', `/desktop-flows/${flow.id}`)).status).toBe(200)

    await json(['flows', 'unshare', flow.id, share.id as string])
    expect((await api(t.url, peerToken, 'GET', `/desktop-flows/${flow.id}`)).status).toBe(404)
    const both = await cli(['flows', 'share', flow.id, '--user', 'x', '--service-principal', 'y'])
    expect(both.code).toBe(2)
    // Credentials are shared with the same verbs, at their own levels.
    const credential = await api(
      t.url,
      token,
      'POST',
      `/environments/${bed.environmentId}/credentials`,
      {
        name: 'shared-secret',
        usage: 'flow',
        username: { value: 'svc' },
        secret: { store: 'builtin', value: 'not-shown-anywhere' },
      },
    )
    expect(credential.status, credential.text).toBe(201)
    const credentialShare = await json([
      'credentials',
      'share',
      credential.body.id,
      '--user',
      peer.body.id,
      '--access',
      'userCanShare',
    ])
    expect(credentialShare).toMatchObject({ principalId: peer.body.id, access: 'userCanShare' })
    const credentialShares = await cli(['credentials', 'shares', credential.body.id, '--json'])
    expect(JSON.parse(credentialShares.stdout)).toEqual([credentialShare])
    await json(['credentials', 'unshare', credential.body.id, credentialShare.id as string])
    expect(
      JSON.parse((await cli(['credentials', 'shares', credential.body.id, '--json'])).stdout),
    ).toEqual([])
    // A connection credential sealed to a machine named on the command line: its own group.
    const sealed = await desklink(
      [
        'credentials',
        'create',
        'picky-login',
        '--usage',
        'connection',
        '--username',
        'runner',
        '--secret-stdin',
        '--machine',
        'picky',
        '--json',
      ],
      { env: { DESKLINK_CONFIG_DIR: configDir }, stdin: 'runner-password\n' },
    )
    expect(sealed.code, sealed.stderr).toBe(0)
    expect(JSON.parse(sealed.stdout).secret).toMatchObject({
      store: 'builtin',
      groupId: bed.machine.standaloneGroupId,
    })
    expect((await json(['credentials', 'show', 'picky-login'])).id).toBe(
      JSON.parse(sealed.stdout).id,
    )
  })

  it('shows and changes the run limits of an environment', async () => {
    const environment = ['--environment', bed.environmentId]
    expect(await json(['runs', 'settings', ...environment])).toEqual({
      maxQueuedRuns: 500,
      runsPerMinutePerConnection: 70,
      queueTimeoutSeconds: 21_600,
      signInQueueTimeoutSeconds: 3_600,
      maxRunInputBytes: 2 * 1024 * 1024,
      maxRunTimeoutSeconds: 86_400,
      defaultRunTimeoutSeconds: 10_800,
      queueEventsTtlMinutes: 10_080,
    })
    expect(
      await json([
        'runs',
        'settings',
        ...environment,
        '--max-queued-runs',
        '20',
        '--runs-per-minute',
        '5',
        '--default-run-timeout',
        '900',
      ]),
    ).toMatchObject({
      maxQueuedRuns: 20,
      runsPerMinutePerConnection: 5,
      queueTimeoutSeconds: 21_600,
      defaultRunTimeoutSeconds: 900,
    })
    const bad = await cli(['runs', 'settings', ...environment, '--queue-timeout', 'soon'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('whole number')

    // A run above the environment's longest timeout: the limit names the option that set it.
    await json(['runs', 'settings', ...environment, '--max-run-timeout', '600'])
    try {
      const long = await cli([
        'run',
        bed.flow.id,
        '--connection',
        bed.connectionId,
        '--timeout',
        '700',
        '--no-wait',
      ])
      expect(long.code).toBe(1)
      expect(long.stderr).toMatch(/^ {2}field: --timeout$/m)
      expect(long.stderr).toMatch(/^ {2}max: 600$/m)
    } finally {
      await json(['runs', 'settings', ...environment, '--max-run-timeout', '86400'])
    }
  })
})
