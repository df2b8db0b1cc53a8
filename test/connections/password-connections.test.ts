/**
 * Username-and-password connections tested on a real machine: a real server, a real agent
 * process, OS accounts made by the test and checked with PAM. The right password connects; a
 * wrong password, an expired account, an expired password, a locked account and an unknown
 * user each fail with the reference's message and a distinct reason; every username format maps
 * as documented or fails clearly; with no machine online nothing is stored; the password is
 * never in the database.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { hostname } from 'node:os'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { type AgentHome, createAgentHome } from '../support/agent-home.ts'
import { startAgentMachine } from '../support/agent-machine.ts'
import { assertBuilt, desklink, type LongRunning, waitFor } from '../support/cli-process.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import { pushFlow } from '../support/runs.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'usermod', 'chage', 'passwd'])
if (reason) process.stderr.write(`password connection suite skipped: ${reason}\n`)

const PASSWORD = 'Conn-test-password-71'

describe.skipIf(reason !== undefined)('username and password connections (real agent, PAM)', () => {
  let t: TestServer
  let token: string
  let environmentId: string
  let machineId: string
  let home: AgentHome
  let agent: LongRunning
  const users: OsUser[] = []
  const user = (prefix: string, after?: (name: string) => void) => {
    const created = createOsUser(prefix, PASSWORD)
    users.push(created)
    after?.(created.name)
    return created.name
  }
  const connect = (username: string, password = PASSWORD) =>
    api(t.url, token, 'POST', `/environments/${environmentId}/connections`, {
      name: `c-${username}`.slice(0, 100),
      target: { machineId },
      username,
      password,
    })

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '1000' })
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, token, 'GET', '/me')).body.roles[0].environmentId
    ;({ machineId, home, agent } = await startAgentMachine(() => t.url, token, environmentId))
  })
  afterAll(async () => {
    await agent?.stop()
    for (const u of users) u.remove()
    home?.remove()
    await t?.close()
  })

  it('connects with the right password and names the OS account', async () => {
    const name = user('dlc')
    const created = await connect(name)
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({
      status: 'Connected',
      error: null,
      osAccount: name,
      type: 'password',
      username: name,
    })
    expect(created.body.lastTestedAt).toEqual(expect.any(String))
  })

  it.each([
    ['.\\USER', 'dot'],
    ['local\\USER', 'local'],
    ['HOST\\USER', 'machine name'],
  ])('maps %s (%s) to the local account', async (format) => {
    const name = user('dlf')
    const username = format
      .replace('USER', name)
      .replace('HOST', hostname().split('.')[0].toUpperCase())
    const created = await connect(username)
    expect(created.body).toMatchObject({ status: 'Connected', osAccount: name })
  })

  it.each([
    ['CORP\\USER', "not joined to domain 'CORP'"],
    ['USER@corp.example', "not joined to domain 'corp.example'"],
  ])('refuses %s on a machine not joined to that domain', async (format, detail) => {
    const name = user('dld')
    const created = await connect(format.replace('USER', name))
    expect(created.body.status).toBe('Error')
    expect(created.body.error.details).toMatchObject({ reason: 'usernameNotMapped' })
    expect(created.body.error.details.detail).toContain(detail)
  })

  const failures: [string, (name: string) => void, string, string][] = [
    ['a wrong password', () => undefined, 'wrong-password', 'wrongPassword'],
    [
      'an expired account',
      (n) => execFileSync('usermod', ['--expiredate', '1', n]),
      PASSWORD,
      'accountExpired',
    ],
    [
      'an expired password',
      (n) => execFileSync('chage', ['--lastday', '0', n]),
      PASSWORD,
      'passwordExpired',
    ],
    [
      'a locked account',
      (n) => execFileSync('passwd', ['--lock', n], { stdio: 'ignore' }),
      PASSWORD,
      'accountLocked',
    ],
  ]
  it.each(failures)(
    'fails %s with the reference message and its own reason',
    async (_what, prepare, password, expected) => {
      const name = user('dle', prepare)
      const created = await connect(name, password)
      expect(created.status).toBe(201)
      expect(created.body.status).toBe('Error')
      expect(created.body.error.message).toMatch(
        new RegExp(
          `^Connection failed: \\[Machine ${machineId}\\]\\. There's an issue with your credentials\\. Check your credentials or use different credentials to connect to the machine\\. Correlation id: [0-9a-f-]{36}$`,
        ),
      )
      expect(created.body.error.details.reason).toBe(expected)
    },
  )

  it('fails an unknown user clearly', async () => {
    const created = await connect('nosuchuser42')
    expect(created.body.error.details).toMatchObject({
      reason: 'usernameNotMapped',
      detail: "No account 'nosuchuser42' exists on this machine.",
    })
  })

  it('tests again on demand and picks up a changed password', async () => {
    const name = user('dlt')
    const created = await connect(name)
    expect(created.body.status).toBe('Connected')
    execFileSync('chpasswd', { input: `${name}:Changed-password-99\n` })
    const retested = await api(t.url, token, 'POST', `/connections/${created.body.id}/test`)
    expect(retested.body).toMatchObject({
      status: 'Error',
      error: { details: { reason: 'wrongPassword' } },
    })
  })

  it('lets the CLI seal the password itself: the server never receives it in plaintext', async () => {
    const received: string[] = []
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        received.push(`${req.method} ${req.url} ${body.toString('utf8')}`)
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(
            ([k]) => !['host', 'connection', 'content-length'].includes(k),
          ),
        ) as Record<string, string>
        fetch(`${t.url}${req.url}`, {
          method: req.method,
          headers,
          ...(body.length > 0 && { body }),
        })
          .then(async (upstream) => {
            res.writeHead(upstream.status, {
              'content-type': upstream.headers.get('content-type') ?? 'application/json',
            })
            res.end(Buffer.from(await upstream.arrayBuffer()))
          })
          .catch(() => res.writeHead(502).end())
      })
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
    const cliHome = createAgentHome()
    try {
      const name = user('dlp')
      const login = await desklink(
        ['login', '--server', proxyUrl, '--username', 'admin', '--password-stdin'],
        { env: cliHome.env, stdin: ADMIN_PASSWORD },
      )
      expect(login.code).toBe(0)
      const created = await desklink(
        [
          'connections',
          'create',
          'by-cli',
          '--environment',
          environmentId,
          '--machine',
          machineId,
          '--username',
          name,
          '--json',
        ],
        { env: cliHome.env, stdin: `${PASSWORD}\n` },
      )
      expect(created.stderr).toBe('')
      expect(JSON.parse(created.stdout)).toMatchObject({ status: 'Connected', osAccount: name })
      const createCall = received.find(
        (r) => r.startsWith('POST /api/v1/environments/') && r.includes('/connections'),
      )
      expect(createCall).toContain('sealedPassword')
      expect(received.join('\n')).not.toContain(PASSWORD)
    } finally {
      proxy.close()
      cliHome.remove()
    }
  })

  it('records create, test, delete and denied attempts as audit events', async () => {
    const name = user('dla')
    const created = await connect(name)
    await api(t.url, token, 'POST', `/connections/${created.body.id}/test`)
    const other = await api(t.url, token, 'POST', '/users', {
      username: `peek${name}`,
      password: 'peek-password-123',
    })
    await api(t.url, token, 'POST', `/environments/${environmentId}/role-assignments`, {
      principalType: 'user',
      principalId: other.body.id,
      role: 'MachineUser',
    })
    const peek = (await signIn(t.url, 'default', `peek${name}`, 'peek-password-123')).access_token
    expect((await api(t.url, peek, 'GET', `/connections/${created.body.id}`)).status).toBe(404)
    expect((await api(t.url, peek, 'DELETE', `/connections/${created.body.id}`)).status).toBe(404)
    expect((await api(t.url, token, 'DELETE', `/connections/${created.body.id}`)).status).toBe(204)
    const storage = openStorage(t.database.url)
    try {
      const events = await storage.db
        .selectFrom('audit_events')
        .select(['action', 'outcome', 'actor_id'])
        .where('target_id', '=', created.body.id)
        .orderBy('created_at')
        .execute()
      expect(events.map((e) => `${e.action}:${e.outcome}`).sort()).toEqual([
        'connection.create:success',
        'connection.delete:denied',
        'connection.delete:success',
        'connection.read:denied',
        'connection.test:success',
      ])
      expect(
        events.filter((e) => e.outcome === 'denied').every((e) => e.actor_id === other.body.id),
      ).toBe(true)
    } finally {
      await storage.close()
    }
  })

  it('never stores the password in a form the server can read', () => {
    const stored = t.database.files
      .map((file) => {
        try {
          return readFileSync(file).toString('latin1')
        } catch {
          return ''
        }
      })
      .join('\n')
    expect(stored).toContain('Connected')
    expect(stored).not.toContain(PASSWORD)
    expect(t.logs.join('\n')).not.toContain(PASSWORD)
  })

  it('connects with a new credential made in the same call, which stays while it is used', async () => {
    const name = user('dln')
    const standaloneGroupId = (await api(t.url, token, 'GET', `/machines/${machineId}`)).body
      .standaloneGroupId as string
    const created = await api(t.url, token, 'POST', `/environments/${environmentId}/connections`, {
      name: 'with-new-credential',
      target: { machineId },
      newCredential: {
        name: `cred-${name}`,
        usage: 'connection',
        username: { value: name },
        secret: { store: 'builtin', value: PASSWORD, groupId: standaloneGroupId },
      },
    })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ type: 'credential', status: 'Connected', osAccount: name })
    const credentialId = created.body.credentialId as string
    const credential = await api(t.url, token, 'GET', `/credentials/${credentialId}`)
    expect(credential.body.name).toBe(`cred-${name}`)
    // Its dependencies name the connection, and it cannot be deleted from under it.
    const uses = { id: created.body.id, name: 'with-new-credential' }
    expect(
      (await api(t.url, token, 'GET', `/credentials/${credentialId}/dependencies`)).body,
    ).toEqual({ connections: [uses] })
    const refused = await api(t.url, token, 'DELETE', `/credentials/${credentialId}`)
    expect(refused.status).toBe(409)
    expect(refused.body.error).toMatchObject({
      code: 'CredentialInUse',
      details: { connections: [uses] },
    })
    expect((await api(t.url, token, 'GET', `/connections/${uses.id}`)).body.status).toBe(
      'Connected',
    )
    // With force it goes, and the connection says why it no longer connects.
    const forced = await api(t.url, token, 'DELETE', `/credentials/${credentialId}?force=true`)
    expect(forced.status, forced.text).toBe(204)
    expect((await api(t.url, token, 'GET', `/connections/${uses.id}`)).body).toMatchObject({
      status: 'Error',
      error: { code: 'CredentialDeleted', details: { credentialId } },
    })
    const flow = await pushFlow(t.url, token, environmentId, { name: 'orphan', script: 'true' })
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId: uses.id,
    })
    expect(run.status).toBe(409)
    expect(run.body.error.code).toBe('CredentialDeleted')
    expect((await api(t.url, token, 'DELETE', `/connections/${uses.id}`)).status).toBe(204)
  })

  it('breaks connections to the machine alone when it joins a machine group', async () => {
    const name = user('dlg')
    const created = await connect(name)
    expect(created.body.status).toBe('Connected')
    const group = await api(t.url, token, 'POST', '/machine-groups', {
      environmentId,
      name: 'joiners',
    })
    const login = await desklink(
      ['login', '--server', t.url, '--username', 'admin', '--password-stdin'],
      { env: home.env, stdin: ADMIN_PASSWORD },
    )
    expect(login.code).toBe(0)
    const joined = await desklink(['agent', 'join-group', group.body.id], {
      env: home.env,
      stdin: 'joiners-group-password\n',
    })
    expect(joined.code).toBe(0)
    const after = await api(t.url, token, 'GET', `/connections/${created.body.id}`)
    expect(after.body).toMatchObject({
      status: 'Error',
      error: { code: 'MachineJoinedGroup', details: { groupId: group.body.id } },
    })
  })

  it('stores nothing when no machine of the target is online', async () => {
    const before = (await api(t.url, token, 'GET', `/environments/${environmentId}/connections`))
      .body.items.length
    await agent.stop()
    await waitFor(
      async () =>
        (await api(t.url, token, 'GET', `/machines/${machineId}`)).body.status === 'disconnected',
      'the agent to go',
      15_000,
    )
    const refused = await connect(user('dlo'))
    expect(refused.status).toBe(409)
    expect(refused.body.error.code).toBe('NoListenerConnected')
    expect(
      (await api(t.url, token, 'GET', `/environments/${environmentId}/connections`)).body.items,
    ).toHaveLength(before)
  })
})
