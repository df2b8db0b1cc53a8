/**
 * The agent lifecycle with a real server and real agent processes: registration, connection,
 * heartbeats, server restart, machine deletion, registration token misuse, and the local
 * policy (allowedTenants checked before contacting the server, enforceOnStart).
 */
import { createServer } from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createAgentHome } from '../support/agent-home.ts'
import { assertBuilt, desklink, spawnDesklink, waitFor } from '../support/cli-process.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const HEARTBEAT_MS = 300

describe('agent lifecycle (real server, real agent processes)', () => {
  let t: TestServer
  let token: string
  let tenantId: string
  let environmentId: string
  const clock = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) }

  const newRegistrationToken = async () =>
    (await api(t.url, token, 'POST', `/environments/${environmentId}/registration-tokens`, {})).body
      .token as string
  const machine = async (id: string) => (await api(t.url, token, 'GET', `/machines/${id}`)).body

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer(
      'sqlite',
      { DESKLINK_AGENT_HEARTBEAT_MS: String(HEARTBEAT_MS) },
      { clock },
    )
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const me = await api(t.url, token, 'GET', '/me')
    tenantId = me.body.tenant.id
    environmentId = me.body.roles[0].environmentId
  })
  afterAll(async () => t.close())

  it('registers, connects, heartbeats, reconnects after a server restart, and stops for good when deleted', async () => {
    const home = createAgentHome()
    home.writePolicy({ allowedTenants: [tenantId], enforceOnStart: true })
    try {
      const registered = await desklink(
        ['agent', 'register', '--server', t.url, '--name', 'lifecycle-box', '--json'],
        {
          env: home.env,
          stdin: await newRegistrationToken(),
        },
      )
      expect(registered.stderr).toBe('')
      const state = JSON.parse(registered.stdout) as { machineId: string; tenantId: string }
      expect(state.tenantId).toBe(tenantId)
      expect((await machine(state.machineId)).status).toBe('disconnected')

      const agent = spawnDesklink(['agent', 'run'], home.env)
      try {
        await waitFor(
          async () => (await machine(state.machineId)).status === 'connected',
          'the agent to connect',
        )
        const first = (await machine(state.machineId)).lastHeartbeatAt as string
        await waitFor(
          async () => (await machine(state.machineId)).lastHeartbeatAt > first,
          'a later heartbeat',
        )

        const status = await desklink(['agent', 'status', '--json'], { env: home.env })
        expect(JSON.parse(status.stdout).status.mode).toBe('connected')

        await t.restart()
        token = (
          await waitFor(
            () => signIn(t.url, 'default', 'admin', ADMIN_PASSWORD),
            'sign-in after restart',
          )
        ).access_token
        await waitFor(
          () => t.logs.filter((l) => l.includes('"agent connected"')).length >= 2,
          'the agent to reconnect by itself',
        )
        await waitFor(
          async () => (await machine(state.machineId)).status === 'connected',
          'connected after restart',
        )

        const deletedAt = Date.now()
        expect((await api(t.url, token, 'DELETE', `/machines/${state.machineId}`)).status).toBe(204)
        expect(await agent.exited()).toBe(3)
        expect(Date.now() - deletedAt).toBeLessThan(1000)
        expect(agent.output()).toContain('MachineDeleted')

        const again = await desklink(['agent', 'run'], { env: home.env, timeoutMs: 5000 })
        expect(again.code).not.toBe(0)
        expect(again.stderr).toContain('MachineDeleted')
      } finally {
        await agent.stop()
      }
    } finally {
      home.remove()
    }
  })

  it('refuses a registration token that was already used, with a code', async () => {
    const registrationToken = await newRegistrationToken()
    const first = createAgentHome()
    const second = createAgentHome()
    try {
      expect(
        (
          await desklink(['agent', 'register', '--server', t.url], {
            env: first.env,
            stdin: registrationToken,
          })
        ).code,
      ).toBe(0)
      const reused = await desklink(['agent', 'register', '--server', t.url, '--json'], {
        env: second.env,
        stdin: registrationToken,
      })
      expect(reused.code).toBe(1)
      expect(JSON.parse(reused.stderr).error).toMatchObject({
        code: 'RegistrationTokenInvalid',
        details: { reason: 'used' },
      })
    } finally {
      first.remove()
      second.remove()
    }
  })

  it('refuses an expired registration token, with a code', async () => {
    const registrationToken = await newRegistrationToken()
    const home = createAgentHome()
    clock.offsetMs = 61 * 60 * 1000
    try {
      const expired = await desklink(['agent', 'register', '--server', t.url, '--json'], {
        env: home.env,
        stdin: registrationToken,
      })
      expect(expired.code).toBe(1)
      expect(JSON.parse(expired.stderr).error).toMatchObject({
        code: 'RegistrationTokenInvalid',
        details: { reason: 'expired' },
      })
    } finally {
      clock.offsetMs = 0
      home.remove()
    }
  })

  it('refuses to register into a tenant missing from allowedTenants before contacting the server', async () => {
    const contacts: string[] = []
    const listener = createServer((socket) => {
      contacts.push('connection')
      socket.destroy()
    })
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    const port = (listener.address() as { port: number }).port
    const home = createAgentHome()
    home.writePolicy({ allowedTenants: ['00000000-0000-4000-8000-000000000000'] })
    try {
      const refused = await desklink(
        ['agent', 'register', '--server', `http://127.0.0.1:${port}`, '--json'],
        {
          env: home.env,
          stdin: await newRegistrationToken(),
        },
      )
      expect(refused.code).toBe(1)
      expect(JSON.parse(refused.stderr).error.code).toBe(
        'UnauthorizedRegistrationToNonAllowListedTenant',
      )
      expect(contacts).toEqual([])
    } finally {
      listener.close()
      home.remove()
    }
  })

  it('with enforceOnStart, refuses to start once the tenant is removed from the policy', async () => {
    const home = createAgentHome()
    home.writePolicy({ allowedTenants: [tenantId], enforceOnStart: true })
    try {
      expect(
        (
          await desklink(['agent', 'register', '--server', t.url], {
            env: home.env,
            stdin: await newRegistrationToken(),
          })
        ).code,
      ).toBe(0)
      home.writePolicy({
        allowedTenants: ['00000000-0000-4000-8000-000000000000'],
        enforceOnStart: true,
      })
      const refused = await desklink(['agent', 'run', '--json'], { env: home.env, timeoutMs: 5000 })
      expect(refused.code).toBe(1)
      expect(JSON.parse(refused.stderr).error.code).toBe('RegistrationNoLongerAllowed')
      home.writePolicy({
        allowedTenants: ['00000000-0000-4000-8000-000000000000'],
        enforceOnStart: false,
      })
      const agent = spawnDesklink(['agent', 'run'], home.env)
      await waitFor(
        () => agent.output().includes('connected to the server'),
        'the agent to start without enforceOnStart',
      )
      await agent.stop()
    } finally {
      home.remove()
    }
  })

  it('refuses a policy file others may write', async () => {
    const home = createAgentHome()
    try {
      home.writePolicy({ allowedTenants: [tenantId] })
      const { chmodSync } = await import('node:fs')
      chmodSync(`${home.dir}/agent-policy.json`, 0o666)
      const refused = await desklink(['agent', 'register', '--server', t.url, '--json'], {
        env: home.env,
        stdin: await newRegistrationToken(),
      })
      expect(JSON.parse(refused.stderr).error.code).toBe('UnsafePolicyFile')
    } finally {
      home.remove()
    }
  })

  it('re-registers with --force after the machine was deleted while the agent was stopped', async () => {
    const home = createAgentHome()
    try {
      const first = JSON.parse(
        (
          await desklink(['agent', 'register', '--server', t.url, '--json'], {
            env: home.env,
            stdin: await newRegistrationToken(),
          })
        ).stdout,
      )
      expect((await api(t.url, token, 'DELETE', `/machines/${first.machineId}`)).status).toBe(204)
      const forced = await desklink(['agent', 'register', '--server', t.url, '--force', '--json'], {
        env: home.env,
        stdin: await newRegistrationToken(),
      })
      expect(forced.stderr).toBe('')
      expect(JSON.parse(forced.stdout).machineId).not.toBe(first.machineId)
    } finally {
      home.remove()
    }
  })

  it('asks for --force to re-register, and --force replaces the old machine', async () => {
    const home = createAgentHome()
    try {
      const first = JSON.parse(
        (
          await desklink(['agent', 'register', '--server', t.url, '--json'], {
            env: home.env,
            stdin: await newRegistrationToken(),
          })
        ).stdout,
      )
      const again = await desklink(['agent', 'register', '--server', t.url, '--json'], {
        env: home.env,
        stdin: await newRegistrationToken(),
      })
      expect(JSON.parse(again.stderr).error.code).toBe('AlreadyRegistered')
      const forced = await desklink(['agent', 'register', '--server', t.url, '--force', '--json'], {
        env: home.env,
        stdin: await newRegistrationToken(),
      })
      expect(forced.code).toBe(0)
      const second = JSON.parse(forced.stdout)
      expect(second.machineId).not.toBe(first.machineId)
      expect((await api(t.url, token, 'GET', `/machines/${first.machineId}`)).status).toBe(404)
      expect((await api(t.url, token, 'GET', `/machines/${second.machineId}`)).status).toBe(200)
    } finally {
      home.remove()
    }
  })
})
