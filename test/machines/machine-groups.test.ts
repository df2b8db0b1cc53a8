/**
 * Machine groups with real agent processes: the first machine creates the group key and
 * password, a wrong password fails on the machine and changes nothing, the right one joins,
 * the group limit holds, members inherit settings pushed over the channel, leaving keeps the
 * group settings, a run waiting for the group fails at once when its last machine goes, and the
 * database never holds the group private key or password in usable form.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { MachineJoinedGroup } from '../../packages/server/src/machines/index.ts'
import { createMembershipEvents } from '../../packages/server/src/machines/index.ts'
import { openStorage } from '../../packages/server/src/storage/index.ts'
import { type AgentHome, createAgentHome } from '../support/agent-home.ts'
import {
  assertBuilt,
  desklink,
  type LongRunning,
  spawnDesklink,
  waitFor,
} from '../support/cli-process.ts'
import { insertConnectionRow } from '../support/connection-rows.ts'
import { pushFlow, waitForRun } from '../support/runs.ts'
import { registerTestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const GROUP_PASSWORD = 'canary-group-password-4e1f'

interface Registered {
  home: AgentHome
  machineId: string
  standaloneGroupId: string
}

describe('machine groups (real server, real agent processes)', () => {
  let t: TestServer
  let token: string
  let environmentId: string
  let groupId: string
  const joined: MachineJoinedGroup[] = []
  const machines: Registered[] = []
  let agentB: LongRunning | undefined
  let groupPrivateKey = ''

  async function registerMachine(name: string): Promise<Registered> {
    const home = createAgentHome()
    const registrationToken = (
      await api(t.url, token, 'POST', `/environments/${environmentId}/registration-tokens`, {})
    ).body.token
    const out = await desklink(['agent', 'register', '--server', t.url, '--name', name, '--json'], {
      env: home.env,
      stdin: registrationToken,
    })
    expect(out.code).toBe(0)
    const login = await desklink(
      ['login', '--server', t.url, '--username', 'admin', '--password-stdin'],
      { env: home.env, stdin: ADMIN_PASSWORD },
    )
    expect(login.code).toBe(0)
    const state = JSON.parse(out.stdout) as { machineId: string; standaloneGroupId: string }
    const registered = { home, ...state }
    machines.push(registered)
    return registered
  }
  const joinGroup = (m: Registered, password: string) =>
    desklink(['agent', 'join-group', groupId, '--json'], {
      env: m.home.env,
      stdin: `${password}\n`,
    })
  const group = async () => (await api(t.url, token, 'GET', `/machine-groups/${groupId}`)).body
  const machine = async (id: string) => (await api(t.url, token, 'GET', `/machines/${id}`)).body

  let a: Registered
  let b: Registered

  beforeAll(async () => {
    assertBuilt()
    const membership = createMembershipEvents()
    membership.onMachineJoinedGroup((event) => void joined.push(event))
    t = await startTestServer(
      'sqlite',
      { DESKLINK_MAX_GROUP_MEMBERS: '2', DESKLINK_AGENT_HEARTBEAT_MS: '500' },
      { membership },
    )
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, token, 'GET', '/me')).body.roles[0].environmentId
    groupId = (
      await api(t.url, token, 'POST', '/machine-groups', { environmentId, name: 'payroll' })
    ).body.id
    a = await registerMachine('group-a')
    b = await registerMachine('group-b')
  })
  afterAll(async () => {
    await agentB?.stop()
    for (const m of machines) m.home.remove()
    await t.close()
  })

  it('lets the first machine create the group key, and tells subscribers it left its own group', async () => {
    const result = await joinGroup(a, GROUP_PASSWORD)
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toMatchObject({ groupId, createdKey: true })
    expect(await group()).toMatchObject({ memberCount: 1, publicKey: expect.any(String) })
    expect((await machine(a.machineId)).groupId).toBe(groupId)
    expect(joined).toEqual([
      {
        tenantId: expect.any(String),
        machineId: a.machineId,
        standaloneGroupId: a.standaloneGroupId,
        groupId,
      },
    ])
  })

  it('fails a wrong group password clearly on the machine and changes nothing', async () => {
    const before = await group()
    const result = await joinGroup(b, 'not-the-group-password')
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stderr).error).toMatchObject({
      code: 'GroupPasswordIncorrect',
      message: 'The group password is incorrect.',
    })
    expect(await group()).toEqual(before)
    expect((await machine(b.machineId)).groupId).toBe(b.standaloneGroupId)
    const status = JSON.parse(
      (await desklink(['agent', 'status', '--json'], { env: b.home.env })).stdout,
    )
    expect(status.registration.groupId).toBe(b.standaloneGroupId)
    expect(joined).toHaveLength(1)
  })

  it('refuses a join whose key proof is wrong, on the server, and changes nothing', async () => {
    const intruder = await registerTestMachine(t.url, token, environmentId, 'no-key-box')
    const headers = { 'x-desklink-machine-assertion': await intruder.assertion() }
    const info = await api(t.url, token, 'GET', `/agent/groups/${groupId}/join`, undefined, headers)
    expect(info.body.challenge).toEqual(expect.any(String))
    const forged = `${Date.now() + 60_000}.${'A'.repeat(43)}`
    const attempt = await api(
      t.url,
      token,
      'POST',
      `/agent/groups/${groupId}/join`,
      { challengeResponse: forged },
      {
        'x-desklink-machine-assertion': await intruder.assertion(),
      },
    )
    expect(attempt.status).toBe(403)
    expect(attempt.body.error.code).toBe('GroupKeyProofFailed')
    expect((await machine(intruder.machineId)).groupId).toBe(intruder.standaloneGroupId)
    await api(t.url, token, 'DELETE', `/machines/${intruder.machineId}`)
  })

  it('joins a later machine with the right password; both hold the same group key', async () => {
    agentB = spawnDesklink(['agent', 'run'], b.home.env)
    await waitFor(async () => (await machine(b.machineId)).status === 'connected', 'agent B')
    const result = await joinGroup(b, GROUP_PASSWORD)
    expect(JSON.parse(result.stdout)).toMatchObject({ groupId, createdKey: false })
    expect((await group()).memberCount).toBe(2)
    const keyOf = (m: Registered) =>
      readFileSync(
        join(m.home.env.DESKLINK_AGENT_STATE_DIR, 'keys', `group-${groupId}.key`),
        'utf8',
      )
    expect(keyOf(b)).toBe(keyOf(a))
    groupPrivateKey = keyOf(a).trim()
  })

  it('refuses a machine beyond the group limit', async () => {
    const c = await registerMachine('group-c')
    const result = await joinGroup(c, GROUP_PASSWORD)
    expect(JSON.parse(result.stderr).error.code).toBe('MachineGroupFull')
    expect((await machine(c.machineId)).groupId).toBe(c.standaloneGroupId)
  })

  it('pushes group settings to members, which cannot change them alone', async () => {
    await api(t.url, token, 'PATCH', `/machine-groups/${groupId}`, {
      settings: { maintenanceMode: true, slots: 3 },
    })
    expect((await machine(b.machineId)).effectiveSettings).toMatchObject({
      maintenanceMode: true,
      slots: 3,
    })
    await waitFor(
      () => agentB!.output().includes('"maintenanceMode":true'),
      'agent B to receive the settings',
    )
    const own = await api(t.url, token, 'PATCH', `/machines/${b.machineId}`, {
      settings: { slots: 1 },
    })
    expect(own.status).toBe(409)
    expect(own.body.error).toMatchObject({
      code: 'SettingsInheritedFromGroup',
      details: { settings: ['slots'] },
    })
  })

  it("puts one member in maintenance of its own, which the group's reactivation ends", async () => {
    const setGroup = async (maintenanceMode: boolean) =>
      expect(
        (
          await api(t.url, token, 'PATCH', `/machine-groups/${groupId}`, {
            settings: { maintenanceMode },
          })
        ).status,
      ).toBe(200)
    const inMaintenance = async (id: string) =>
      (await machine(id)).effectiveSettings.maintenanceMode as boolean
    await setGroup(false)
    const own = await api(t.url, token, 'PATCH', `/machines/${b.machineId}`, {
      settings: { maintenanceMode: true },
    })
    expect(own.status, own.text).toBe(200)
    // B is skipped (the group's runs go to A); A is not in maintenance.
    expect([await inMaintenance(a.machineId), await inMaintenance(b.machineId)]).toEqual([
      false,
      true,
    ])
    const members = await api(t.url, token, 'GET', `/machine-groups/${groupId}/members`)
    expect(
      (members.body.items as { id: string; effectiveSettings: { maintenanceMode: boolean } }[])
        .map((m) => [m.id, m.effectiveSettings.maintenanceMode])
        .sort(),
    ).toEqual(
      [
        [a.machineId, false],
        [b.machineId, true],
      ].sort(),
    )
    // A change that leaves the group active leaves the member's own maintenance alone.
    await setGroup(false)
    expect(await inMaintenance(b.machineId)).toBe(true)
    // In maintenance, the group holds every member in it: none changes alone.
    await setGroup(true)
    const alone = await api(t.url, token, 'PATCH', `/machines/${a.machineId}`, {
      settings: { maintenanceMode: false },
    })
    expect(alone.status, alone.text).toBe(409)
    expect(alone.body.error.details).toMatchObject({ settings: ['maintenanceMode'] })
    // Reactivating the group reactivates every member (reference §2.4).
    await setGroup(false)
    expect(await inMaintenance(b.machineId)).toBe(false)
    await setGroup(true)
  })

  /** A run for the group, waiting while no member can take it. */
  let waitingRunId = ''
  /** The group's connection, and a flow to run through it. */
  let groupConnectionId = ''
  let groupFlowId = ''
  const waitingFor = (machineIds: string[]) =>
    waitForRun(t.url, token, waitingRunId, (r) => {
      const machines = (r.waiting as { machines?: { machineId: string }[] } | null)?.machines
      const ids = machines?.map((m) => m.machineId).sort()
      return ids?.join() === [...machineIds].sort().join()
    })

  it('keeps a run for the group waiting while no member can take it, saying why', async () => {
    const me = (await api(t.url, token, 'GET', '/me')).body
    const storage = openStorage(t.database.url)
    // Stored as tested: no machine here has the connection's OS account to vouch for it.
    const connectionId = await insertConnectionRow(
      storage.db,
      { tenantId: me.tenant.id, environmentId, userId: me.id },
      groupId,
    ).finally(() => storage.close())
    const flow = await pushFlow(t.url, token, environmentId, { name: 'payroll', script: 'true' })
    groupConnectionId = connectionId
    groupFlowId = flow.id
    const requested = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
    })
    expect(requested.status, requested.text).toBe(202)
    waitingRunId = requested.body.id
    const queued = await waitingFor([a.machineId, b.machineId])
    expect(queued.status).toBe('Queued')
    // A's agent is not running here; B's is, in the group's maintenance.
    expect(queued.waiting.machines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ machineId: a.machineId, code: 'NoListenerConnected' }),
        expect.objectContaining({ machineId: b.machineId, code: 'MachineInMaintenance' }),
      ]),
    )
  })

  it('tells a member removed by an administrator, which forgets the group key', async () => {
    expect(
      (await api(t.url, token, 'DELETE', `/machine-groups/${groupId}/members/${b.machineId}`))
        .status,
    ).toBe(204)
    const stateFile = join(b.home.env.DESKLINK_AGENT_STATE_DIR, 'state.json')
    await waitFor(
      () => JSON.parse(readFileSync(stateFile, 'utf8')).groupId === b.standaloneGroupId,
      'agent B to leave',
    )
    // The group still has A: its run waits for A alone.
    expect((await waitingFor([a.machineId])).status).toBe('Queued')
  })

  it('leaves the group keeping the group settings', async () => {
    const left = await desklink(['agent', 'leave-group', '--json'], { env: a.home.env })
    expect(left.code).toBe(0)
    const after = await machine(a.machineId)
    expect(after.groupId).toBe(a.standaloneGroupId)
    expect(after.settings).toMatchObject({ maintenanceMode: true, slots: 3 })
  })

  it('fails the run waiting for the group at once when its last machine left it', async () => {
    // Not after its queue timeout of 6 hours: nothing could ever take it.
    const ended = await waitForRun(t.url, token, waitingRunId, undefined, 5_000)
    expect(ended).toMatchObject({ status: 'Failed', error: { code: 'GroupIsEmpty' } })
  })

  it('refuses new runs for the empty group, and for the group once deleted', async () => {
    const request = () =>
      api(t.url, token, 'POST', `/desktop-flows/${groupFlowId}/runs`, {
        connectionId: groupConnectionId,
      })
    const empty = await request()
    expect(empty.status, empty.text).toBe(400)
    expect(empty.body.error.code).toBe('GroupIsEmpty')
    const deleted = await api(t.url, token, 'DELETE', `/machine-groups/${groupId}`)
    expect(deleted.status, deleted.text).toBe(204)
    const gone = await request()
    expect(gone.status, gone.text).toBe(404)
    expect(gone.body.error.code).toBe('XrmMachineGroupNotFound')
  })

  it('never stores the group password or the group private key in the database', () => {
    const privateKey = groupPrivateKey
    expect(privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const hex = Buffer.from(privateKey, 'base64url').toString('hex')
    const stored = t.database.files
      .map((file) => {
        try {
          return readFileSync(file).toString('latin1')
        } catch {
          return ''
        }
      })
      .join('\n')
    expect(stored.length).toBeGreaterThan(1000)
    expect(stored).not.toContain(GROUP_PASSWORD)
    expect(stored).not.toContain(privateKey)
    expect(stored.includes(Buffer.from(privateKey, 'base64url').toString('latin1'))).toBe(false)
    expect(stored).not.toContain(hex)
    expect(t.logs.join('\n')).not.toContain(GROUP_PASSWORD)
  })
})
