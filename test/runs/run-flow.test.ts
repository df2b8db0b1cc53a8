/**
 * The Run desktop flow action end to end: a real server process, a real agent process as root,
 * an OS account made by the test behind a username-and-password connection. The flow really
 * runs as that account, in its own workspace, with its inputs; outputs, run owner and machine
 * credential user come back; files it writes belong to the account, and it has the account's
 * groups. An account whose password changed after the connection was made fails the agent's PAM
 * check: the run fails with WindowsIdentityIncorrect and nothing starts.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AGENT_DEFAULTS } from '../../packages/agent/src/index.ts'
import { assertBuilt } from '../support/cli-process.ts'
import { eventually } from '../support/eventually.ts'
import { type OsUser, skipReason } from '../support/os-users.ts'
import { RUN_ACCOUNT_PASSWORD, type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { startServerProcess } from '../support/server-process.ts'
import { api, type TestServer } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv', 'groupadd', 'usermod'])
if (reason) process.stderr.write(`run suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('running a desktop flow on a real machine', () => {
  let t: TestServer
  let m: RunMachine
  let token: string
  let environmentId: string
  let machineId: string
  let account: OsUser
  let connectionId: string
  let outDir: string

  beforeAll(async () => {
    assertBuilt()
    t = await startServerProcess('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '1000' })
    m = await startRunMachine(() => t.url)
    ;({ token, environmentId, machineId, account, connectionId } = m)
    outDir = mkdtempSync(join(tmpdir(), 'desklink-run-out-'))
    chmodSync(outDir, 0o1777)
  })
  afterAll(async () => {
    await m?.remove()
    if (outDir) rmSync(outDir, { recursive: true, force: true })
    await t?.close()
  })

  it('runs a shell flow as the connection account and returns its outputs', async () => {
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'whoami',
      script: [
        'set -e',
        'echo "hello" > "$(cat "$DESKLINK_INPUTS" | sed -e \'s/.*"target":"\\([^"]*\\)".*/\\1/\')"',
        'printf \'{"user":"%s","home":"%s"}\' "$(id -un)" "$HOME" > "$DESKLINK_OUTPUTS"',
      ].join('\n'),
      inputs: [{ name: 'target', type: 'text', required: true }],
      outputs: [{ name: 'user' }, { name: 'home' }],
    })
    const target = join(outDir, 'written-by-flow.txt')
    const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      inputs: { target },
    })
    expect(started.status).toBe(202)
    // The status URL a workflow engine polls: 202 until the run ended (run-channel tests it),
    // then 200 with the ended run.
    const location = started.headers.get('location') ?? ''
    expect(location).toBe(`${t.url}/api/v1/runs/${started.body.id}/outcome`)
    expect(started.headers.get('retry-after')).toBe('1')
    const run = await waitForRun(t.url, token, started.body.id)
    const polled = await fetch(location, { headers: { authorization: `Bearer ${token}` } })
    expect(polled.status).toBe(200)
    expect(await polled.json()).toMatchObject({ id: run.id, status: 'Succeeded' })
    expect(run).toMatchObject({
      status: 'Succeeded',
      machineId,
      machineCredentialUser: account.name,
      outputs: { user: account.name, home: `/home/${account.name}` },
      exitCode: 0,
      runOwnerType: 'user',
    })
    expect(run.events.map((e: { kind: string }) => e.kind)).toEqual([
      'queued',
      'offered',
      'started',
      'succeeded',
    ])
    expect(statSync(target).uid).toBe(account.uid)
    const connection = (await api(t.url, token, 'GET', `/connections/${connectionId}`)).body
    const machine = (await api(t.url, token, 'GET', `/machines/${machineId}`)).body
    // Who and where, as recorded on the run; its time with and without the queue.
    expect(run).toMatchObject({
      connectionOwnerId: connection.ownerId,
      targetGroupId: machine.groupId,
    })
    expect(run.executionDurationMs).toBe(Date.parse(run.finishedAt) - Date.parse(run.startedAt))
    expect(run.totalDurationMs).toBe(Date.parse(run.finishedAt) - Date.parse(run.requestedAt))
    expect(run.totalDurationMs).toBeGreaterThanOrEqual(run.executionDurationMs)
    expect(connection.lastUsedAt).toEqual(expect.any(String))
    const inventory = (await api(t.url, token, 'GET', `/connections/${connectionId}/inventory`))
      .body.items
    expect(inventory).toContainEqual({
      flowId: flow.id,
      flowName: 'whoami',
      machineId,
      machineName: expect.any(String),
      runOwnerType: 'user',
      runOwnerId: run.runOwnerId,
      runs: 1,
      lastRunAt: run.requestedAt,
    })
  })

  it('runs a node flow and masks sensitive inputs and outputs', async () => {
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'node-echo',
      runtime: 'node',
      script: `const fs = require('fs')
const inputs = JSON.parse(fs.readFileSync(process.env.DESKLINK_INPUTS, 'utf8'))
fs.writeFileSync(process.env.DESKLINK_OUTPUTS, JSON.stringify({ sum: inputs.a + inputs.b, echoed: inputs.secret }))`,
      inputs: [
        { name: 'a', type: 'number', required: true },
        { name: 'b', type: 'number', default: 2 },
        { name: 'secret', type: 'text', sensitive: true },
      ],
      outputs: [
        { name: 'sum', type: 'number' },
        { name: 'echoed', sensitive: true },
      ],
    })
    const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      inputs: { a: 40, secret: 'canary-run-secret' },
    })
    const run = await waitForRun(t.url, token, started.body.id)
    expect(run.error).toBeNull()
    expect(run).toMatchObject({
      status: 'Succeeded',
      inputs: { a: 40, b: 2, secret: '***' },
      outputs: { sum: 42, echoed: '***' },
    })
    expect(JSON.stringify(run)).not.toContain('canary-run-secret')
    // Nor on the machine's disk: inputs are never journaled, and the workspace is gone.
    const onDisk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory()
          ? onDisk(join(dir, entry.name))
          : [readFileSync(join(dir, entry.name)).toString('latin1')],
      )
    for (const dir of [m.home.dir, AGENT_DEFAULTS.workDir].filter((d) => existsSync(d)))
      expect(onDisk(dir).join('\n')).not.toContain('canary-run-secret')
    const database = t.database.files.map((file) =>
      existsSync(file) ? readFileSync(file).toString('latin1') : '',
    )
    expect(database.join('\n')).not.toContain('canary-run-secret')
  })

  it('fails a flow that exits non-zero with its exit code', async () => {
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'fails',
      script: 'echo "something broke" >&2\nexit 3',
    })
    const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
    })
    const run = await waitForRun(t.url, token, started.body.id)
    expect(run).toMatchObject({ status: 'Failed', exitCode: 3, error: { code: 'FlowFailed' } })
    expect(run.error.message).toContain('something broke')
  })

  it("masks sensitive inputs in a failed flow's last output, whatever their type and wherever the cut falls", async () => {
    const printsInputs = await pushFlow(t.url, token, environmentId, {
      name: 'prints-its-inputs',
      script: 'cat "$DESKLINK_INPUTS" >&2\nexit 3',
      inputs: [
        { name: 'text', type: 'text', sensitive: true },
        { name: 'pin', type: 'number', sensitive: true },
        { name: 'key', type: 'json', sensitive: true },
      ],
    })
    // A secret followed by just enough for the output kept for the message to cut it, then the
    // same secret again, whose mask shortens the text and so moves the cut further back.
    const cutsASecret = await pushFlow(t.url, token, environmentId, {
      name: 'cuts-a-secret',
      script: [
        `cut="$(sed -e 's/.*"cut":"\\([^"]*\\)".*/\\1/' "$DESKLINK_INPUTS")"`,
        `printf '%s%2030s%s' "$cut" '' "$cut" >&2`,
        'exit 3',
      ].join('\n'),
      inputs: [{ name: 'cut', type: 'text', sensitive: true }],
    })
    const failedWith = async (flowId: string, inputs: Record<string, unknown>) => {
      const started = await api(t.url, token, 'POST', `/desktop-flows/${flowId}/runs`, {
        connectionId,
        inputs,
      })
      const run = await waitForRun(t.url, token, started.body.id)
      expect(run).toMatchObject({ status: 'Failed', error: { code: 'FlowFailed' } })
      return run.error.message as string
    }

    const printed = await failedWith(printsInputs.id, {
      text: 'text-canary-secret',
      pin: 98765431,
      key: { nested: 'json-canary-secret' },
    })
    for (const secret of ['text-canary-secret', '98765431', 'json-canary-secret'])
      expect(printed).not.toContain(secret)
    expect(printed).toContain('***')
    const cut = await failedWith(cutsASecret.id, { cut: 'cut-canary-secret-9f3e' })
    expect(cut).not.toContain('secret-9f3e')
    expect(cut).toContain('***')
    // A value too short to be masked without garbling the rest withholds the output.
    const short = await failedWith(printsInputs.id, { text: 'ab', pin: 98765431, key: {} })
    expect(short).toContain('withheld')
    expect(short).not.toContain('"ab"')
  })

  it('refuses inputs that do not match the flow', async () => {
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'typed',
      script: 'true',
      inputs: [{ name: 'n', type: 'number', required: true }],
    })
    const bad = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      inputs: { n: 'x', extra: 1 },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('InvalidFlowInputs')
    expect(bad.body.error.details.problems).toEqual(
      expect.arrayContaining([
        { input: 'extra', problem: 'not an input of this flow' },
        { input: 'n', problem: 'must be of type number' },
      ]),
    )
  })

  it('stops a flow at its timeout and kills its process group', async () => {
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'sleeper',
      script: `sleep 30 & echo $! > "${outDir}/child.pid"; wait`,
    })
    const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
      timeoutSeconds: 1,
    })
    const run = await waitForRun(t.url, token, started.body.id)
    expect(run).toMatchObject({ status: 'Failed', error: { code: 'DesktopFlowsActionTimeout' } })
    const childPid = Number(readFileSync(join(outDir, 'child.pid'), 'utf8'))
    expect(isRunning(childPid)).toBe(false)
  })

  it('cancels a running run and kills its process group', async () => {
    const pidFile = join(outDir, 'cancelled-child.pid')
    const flow = await pushFlow(t.url, token, environmentId, {
      name: 'long',
      script: `sleep 30 & echo $! > "${pidFile}"; wait`,
    })
    const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
    })
    await waitForRun(t.url, token, started.body.id, (r) => r.startedAt !== null)
    await eventually(() => existsSync(pidFile), 'the flow started its child')
    const childPid = Number(readFileSync(pidFile, 'utf8'))
    expect(isRunning(childPid)).toBe(true)
    const cancelled = await api(t.url, token, 'POST', `/runs/${started.body.id}/cancel`)
    expect(cancelled.body.status).toBe('Cancelled')
    const again = await api(t.url, token, 'POST', `/runs/${started.body.id}/cancel`)
    expect(again.status).toBe(409)
    // The agent hears of the cancel over its channel and kills the flow's whole group.
    await eventually(() => !isRunning(childPid), 'the flow process group was killed', 10_000)
    // What the agent reports after the kill does not change the outcome.
    const final = await api(t.url, token, 'GET', `/runs/${started.body.id}`)
    expect(final.body.status).toBe('Cancelled')
  })

  it('runs a flow with the supplementary groups of the account', async () => {
    const group = `dlg${randomBytes(3).toString('hex')}`
    execFileSync('groupadd', [group])
    try {
      execFileSync('usermod', ['--append', '--groups', group, account.name])
      const groupsOf = (text: string) => text.trim().split(/\s+/).map(Number).sort()
      const expected = groupsOf(execFileSync('id', ['-G', account.name]).toString())
      expect(expected.length).toBeGreaterThan(1)
      const flow = await pushFlow(t.url, token, environmentId, {
        name: 'groups',
        script: 'printf \'{"groups":"%s"}\' "$(id -G)" > "$DESKLINK_OUTPUTS"',
        outputs: [{ name: 'groups' }],
      })
      const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId,
      })
      const run = await waitForRun(t.url, token, started.body.id)
      expect(run.status).toBe('Succeeded')
      expect(groupsOf(run.outputs.groups as string)).toEqual(expected)
    } finally {
      execFileSync('groupdel', [group])
    }
  })

  it('fails an unattended run whose account no longer takes the connection password', async () => {
    // Changed on the machine after the connection was made: the agent's PAM check refuses it.
    execFileSync('chpasswd', { input: `${account.name}:Another-password-7\n` })
    try {
      const marker = join(outDir, 'ran-with-old-password')
      const flow = await pushFlow(t.url, token, environmentId, {
        name: 'never-starts',
        script: `touch "${marker}"`,
      })
      const started = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
        connectionId,
      })
      const run = await waitForRun(t.url, token, started.body.id)
      expect(run).toMatchObject({
        status: 'Failed',
        error: { code: 'WindowsIdentityIncorrect' },
      })
      expect(existsSync(marker)).toBe(false)
    } finally {
      execFileSync('chpasswd', { input: `${account.name}:${RUN_ACCOUNT_PASSWORD}\n` })
    }
  })
})

/** Whether `pid` is a live process: gone, or a zombie waiting to be reaped, is not. */
function isRunning(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}
