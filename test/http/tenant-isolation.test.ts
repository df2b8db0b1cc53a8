/**
 * Tenant isolation over every API route: a principal of tenant B addressing tenant A's
 * resources gets exactly the answer a never-existing resource gets, lists never show A's
 * resources, and nothing of A changes. The route table must name every route of the OpenAPI
 * document, so a new route fails this test until it joins the table.
 */
import { randomBytes, randomUUID } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openStorage } from '../../packages/server/src/storage/index.ts'
import { BACKENDS } from '../support/backends.ts'
import { insertConnectionRow } from '../support/connection-rows.ts'
import { registerTestMachine, type TestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

/** The ids a route's path parameters are filled from. */
interface Ids {
  tenantId: string
  environmentId: string
  userId: string
  servicePrincipalId: string
  credentialId: string
  assignmentId: string
  machineId: string
  groupId: string
  machineShareId: string
  groupShareId: string
  storeId: string
  credentialId2: string
  credentialShareId: string
  connectionId: string
  connectionShareId: string
  flowId: string
  flowShareId: string
  runId: string
  contentHash: string
}

interface RouteCase {
  readonly body?: (ids: Ids) => unknown
  /** Agent routes: the caller is also tenant B's machine, proven by its assertion. */
  readonly asMachine?: boolean
}

/** Every API route. Keys are `METHOD /path` exactly as /api/openapi.json lists them. */
const ROUTES: Record<string, RouteCase> = {
  'GET /me': {},
  'GET /tenants': {},
  'POST /tenants': { body: () => ({ slug: 'intruder', displayName: 'Intruder' }) },
  'GET /tenants/{tenantId}': {},
  'PATCH /tenants/{tenantId}': { body: () => ({ displayName: 'Renamed' }) },
  'GET /environments': {},
  'POST /environments': { body: () => ({ name: 'b-env' }) },
  'GET /environments/{environmentId}': {},
  'PATCH /environments/{environmentId}': { body: () => ({ name: 'renamed' }) },
  'DELETE /environments/{environmentId}': {},
  'GET /environments/{environmentId}/role-assignments': {},
  'POST /environments/{environmentId}/role-assignments': {
    body: (ids) => ({ principalType: 'user', principalId: ids.userId, role: 'MachineUser' }),
  },
  'DELETE /environments/{environmentId}/role-assignments/{assignmentId}': {},
  'GET /users': {},
  'POST /users': { body: () => ({ username: 'b-user', password: 'b-user-password-1' }) },
  'GET /users/{userId}': {},
  'PATCH /users/{userId}': { body: () => ({ status: 'deactivated' }) },
  'GET /service-principals': {},
  'POST /service-principals': { body: () => ({ name: 'b-bot' }) },
  'GET /service-principals/{servicePrincipalId}': {},
  'PATCH /service-principals/{servicePrincipalId}': { body: () => ({ status: 'deactivated' }) },
  'DELETE /service-principals/{servicePrincipalId}': {},
  'GET /service-principals/{servicePrincipalId}/credentials': {},
  'POST /service-principals/{servicePrincipalId}/secrets': { body: () => ({ expiresInDays: 5 }) },
  'POST /service-principals/{servicePrincipalId}/certificates': {
    body: () => ({
      publicKey:
        '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n',
    }),
  },
  'DELETE /service-principals/{servicePrincipalId}/credentials/{credentialId}': {},
  'POST /environments/{environmentId}/registration-tokens': { body: () => ({}) },
  'GET /machines': {},
  'GET /machines/{machineId}': {},
  'PATCH /machines/{machineId}': { body: () => ({ name: 'renamed' }) },
  'DELETE /machines/{machineId}': {},
  'GET /machines/{machineId}/shares': {},
  'POST /machines/{machineId}/shares': {
    body: (ids) => ({ principalType: 'user', principalId: ids.userId, access: 'user' }),
  },
  'DELETE /machines/{machineId}/shares/{machineShareId}': {},
  'GET /machine-groups': {},
  'POST /machine-groups': {
    body: (ids) => ({ environmentId: ids.environmentId, name: 'b-group' }),
  },
  'GET /machine-groups/{groupId}': {},
  'PATCH /machine-groups/{groupId}': { body: () => ({ name: 'renamed' }) },
  'DELETE /machine-groups/{groupId}': {},
  'GET /machine-groups/{groupId}/members': {},
  'DELETE /machine-groups/{groupId}/members/{machineId}': {},
  'GET /machine-groups/{groupId}/shares': {},
  'POST /machine-groups/{groupId}/shares': {
    body: (ids) => ({ principalType: 'user', principalId: ids.userId, access: 'user' }),
  },
  'DELETE /machine-groups/{groupId}/shares/{groupShareId}': {},
  'GET /environments/{environmentId}/secret-stores': {},
  'POST /environments/{environmentId}/secret-stores': {
    body: () => ({ name: 'b-vault', settings: VAULT_SETTINGS }),
  },
  'GET /secret-stores/{storeId}': {},
  'DELETE /secret-stores/{storeId}': {},
  'GET /environments/{environmentId}/credentials': {},
  'POST /environments/{environmentId}/credentials': {
    body: () => ({
      name: 'b-cred',
      usage: 'flow',
      username: { value: 'u' },
      secret: { store: 'builtin', value: 'isolation-secret' },
    }),
  },
  'GET /credentials/{credentialId2}': {},
  'PATCH /credentials/{credentialId2}': { body: () => ({ name: 'renamed' }) },
  'DELETE /credentials/{credentialId2}': {},
  'POST /credentials/{credentialId2}/test': {},
  'GET /credentials/{credentialId2}/dependencies': {},
  'GET /credentials/{credentialId2}/shares': {},
  'POST /credentials/{credentialId2}/shares': {
    body: (ids) => ({ principalType: 'user', principalId: ids.userId, access: 'user' }),
  },
  'DELETE /credentials/{credentialId2}/shares/{credentialShareId}': {},
  'PUT /machine-groups/{groupId}/cyberark-application': {
    body: () => ({ appId: 'app', certificatePem: 'not-a-certificate' }),
  },
  'GET /machine-groups/{groupId}/cyberark-application': {},
  'DELETE /machine-groups/{groupId}/cyberark-application': {},
  'PUT /machines/{machineId}/cyberark-application': {
    body: () => ({ appId: 'app', certificatePem: 'not-a-certificate' }),
  },
  'GET /machines/{machineId}/cyberark-application': {},
  'DELETE /machines/{machineId}/cyberark-application': {},
  'GET /environments/{environmentId}/connections': {},
  'POST /environments/{environmentId}/connections': {
    body: (ids) => ({
      name: 'b-conn',
      target: { machineId: ids.machineId },
      username: 'svc',
      password: 'isolation-password',
    }),
  },
  'GET /connections/{connectionId}': {},
  'GET /connections/{connectionId}/inventory': {},
  'GET /connections/{connectionId}/target-key': {},
  'POST /connections/{connectionId}/test': {},
  'DELETE /connections/{connectionId}': {},
  'PATCH /connections/{connectionId}': { body: () => ({ name: 'renamed' }) },
  'PUT /connections/{connectionId}/run-owner': {
    body: (ids) => ({ servicePrincipalId: ids.servicePrincipalId }),
  },
  'GET /connections/{connectionId}/shares': {},
  'POST /connections/{connectionId}/shares': {
    body: (ids) => ({
      principalType: 'servicePrincipal',
      principalId: ids.servicePrincipalId,
      access: 'use',
    }),
  },
  'DELETE /connections/{connectionId}/shares/{connectionShareId}': {},
  'POST /agent/register': {
    body: () => ({
      registrationToken: 'dlr.x',
      name: 'n',
      hostname: 'h',
      os: 'o',
      agentVersion: '1',
      identityPublicKey: 'A'.repeat(43),
      standaloneGroupPublicKey: 'A'.repeat(43),
    }),
  },
  'GET /agent/groups/{groupId}/join': { asMachine: true },
  'POST /agent/groups/{groupId}/join': {
    asMachine: true,
    body: () => ({ challengeResponse: 'x.y' }),
  },
  'POST /agent/group/leave': { asMachine: true },
  'GET /agent/flow-packages/{contentHash}': { asMachine: true },
  'GET /environments/{environmentId}/desktop-flows': {},
  'POST /environments/{environmentId}/desktop-flows': { body: () => FLOW_PACKAGE },
  'GET /desktop-flows/{flowId}': {},
  'DELETE /desktop-flows/{flowId}': {},
  'GET /desktop-flows/{flowId}/shares': {},
  'POST /desktop-flows/{flowId}/shares': {
    body: (ids) => ({ principalType: 'user', principalId: ids.userId, access: 'user' }),
  },
  'DELETE /desktop-flows/{flowId}/shares/{flowShareId}': {},
  'POST /desktop-flows/{flowId}/runs': { body: (ids) => ({ connectionId: ids.connectionId }) },
  'GET /runs/{runId}': {},
  'GET /runs/{runId}/outcome': {},
  'PATCH /runs/{runId}': { body: () => ({ priority: 'high' }) },
  'POST /runs/{runId}/cancel': {},
  'GET /environments/{environmentId}/runs': {},
  'POST /environments/{environmentId}/runs/cancel-parent': {
    body: () => ({ parentRunId: 'parent-1' }),
  },
  'GET /environments/{environmentId}/run-settings': {},
  'PATCH /environments/{environmentId}/run-settings': { body: () => ({ maxQueuedRuns: 1 }) },
}

const FLOW_PACKAGE = {
  manifest: { name: 'isolation-flow', runtime: 'shell', entry: 'main.sh' },
  files: [{ path: 'main.sh', contentBase64: Buffer.from('true').toString('base64') }],
}

const VAULT_SETTINGS = {
  type: 'hashicorpVault',
  address: 'https://127.0.0.1:1',
  auth: { method: 'token', token: 'isolation-token' },
}

const fill = (path: string, ids: Ids) =>
  tableKey(path)
    .replace(
      '/machines/{machineId}/shares/{shareId}',
      '/machines/{machineId}/shares/{machineShareId}',
    )
    .replace(
      '/machine-groups/{groupId}/shares/{shareId}',
      '/machine-groups/{groupId}/shares/{groupShareId}',
    )
    .replace(/\{(\w+)\}/g, (_, name: string) => ids[name as keyof Ids])

/** The OpenAPI document names both share ids `shareId`; the table tells them apart. */
function tableKey(route: string): string {
  return route
    .replace(/(^|\s)\/credentials\/\{credentialId\}/, '$1/credentials/{credentialId2}')
    .replace(
      '/connections/{connectionId}/shares/{shareId}',
      '/connections/{connectionId}/shares/{connectionShareId}',
    )
    .replace(
      '/desktop-flows/{flowId}/shares/{shareId}',
      '/desktop-flows/{flowId}/shares/{flowShareId}',
    )
    .replace(
      '/credentials/{credentialId2}/shares/{shareId}',
      '/credentials/{credentialId2}/shares/{credentialShareId}',
    )
    .replace(
      '/machines/{machineId}/shares/{shareId}',
      '/machines/{machineId}/shares/{machineShareId}',
    )
    .replace(
      '/machine-groups/{groupId}/shares/{shareId}',
      '/machine-groups/{groupId}/shares/{groupShareId}',
    )
}

const neverExisting = (): Ids => ({
  tenantId: randomUUID(),
  environmentId: randomUUID(),
  userId: randomUUID(),
  servicePrincipalId: randomUUID(),
  credentialId: randomUUID(),
  assignmentId: randomUUID(),
  machineId: randomUUID(),
  groupId: randomUUID(),
  machineShareId: randomUUID(),
  groupShareId: randomUUID(),
  storeId: randomUUID(),
  credentialId2: randomUUID(),
  credentialShareId: randomUUID(),
  connectionId: randomUUID(),
  connectionShareId: randomUUID(),
  flowId: randomUUID(),
  flowShareId: randomUUID(),
  runId: randomUUID(),
  contentHash: randomBytes(32).toString('hex'),
})

describe.each(BACKENDS)('tenant isolation on %s', (backend) => {
  let t: TestServer
  let tokenA: string
  let tokenB: string
  let idsA: Ids
  let idsB: Ids
  let machineB: TestMachine

  async function seedTenant(
    platformToken: string,
    slug: string,
  ): Promise<{ token: string; ids: Ids; machine: TestMachine }> {
    const created = await api(t.url, platformToken, 'POST', '/tenants', {
      slug,
      displayName: slug,
      adminPassword: `${slug}-admin-password`,
    })
    expect(created.status).toBe(201)
    const token = (await signIn(t.url, slug, 'admin', `${slug}-admin-password`)).access_token
    const environmentId = created.body.environment.id as string
    const user = await api(t.url, token, 'POST', '/users', {
      username: 'member',
      password: 'member-password-1',
    })
    const sp = await api(t.url, token, 'POST', '/service-principals', { name: 'bot' })
    const assignment = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/role-assignments`,
      {
        principalType: 'user',
        principalId: user.body.id,
        role: 'MachineUser',
      },
    )
    const machine = await registerTestMachine(t.url, token, environmentId, `${slug}-machine`)
    const group = await api(t.url, token, 'POST', '/machine-groups', {
      environmentId,
      name: `${slug}-group`,
    })
    const share = { principalType: 'user', principalId: user.body.id, access: 'user' }
    const machineShare = await api(
      t.url,
      token,
      'POST',
      `/machines/${machine.machineId}/shares`,
      share,
    )
    const groupShare = await api(
      t.url,
      token,
      'POST',
      `/machine-groups/${group.body.id}/shares`,
      share,
    )
    const store = await api(t.url, token, 'POST', `/environments/${environmentId}/secret-stores`, {
      name: `${slug}-vault`,
      settings: VAULT_SETTINGS,
    })
    const credential = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/credentials`,
      {
        name: `${slug}-credential`,
        usage: 'flow',
        username: { value: 'svc' },
        secret: { store: 'builtin', value: `${slug}-builtin-secret` },
      },
    )
    // A connection needs a machine online to be created through the API; the fixture row is
    // written directly, as the API would have stored it.
    const storage = openStorage(t.database.url)
    const me = await api(t.url, token, 'GET', '/me')
    const connectionId = await insertConnectionRow(
      storage.db,
      { tenantId: created.body.tenant.id, environmentId, userId: me.body.id },
      machine.standaloneGroupId,
      { name: `${slug}-connection` },
    ).finally(() => storage.close())
    const credentialShare = await api(
      t.url,
      token,
      'POST',
      `/credentials/${credential.body.id}/shares`,
      share,
    )
    const flow = await api(t.url, token, 'POST', `/environments/${environmentId}/desktop-flows`, {
      ...FLOW_PACKAGE,
      manifest: { ...FLOW_PACKAGE.manifest, name: `${slug}-flow` },
    })
    expect(flow.status).toBe(201)
    const flowShare = await api(t.url, token, 'POST', `/desktop-flows/${flow.body.id}/shares`, {
      principalType: 'user',
      principalId: user.body.id,
      access: 'user',
    })
    expect(flowShare.status).toBe(201)
    const run = await api(t.url, token, 'POST', `/desktop-flows/${flow.body.id}/runs`, {
      connectionId,
    })
    expect(run.status, run.text).toBe(202)
    return {
      token,
      machine,
      ids: {
        tenantId: created.body.tenant.id,
        environmentId,
        userId: user.body.id,
        servicePrincipalId: sp.body.id,
        credentialId: sp.body.secret.id,
        assignmentId: assignment.body.id,
        machineId: machine.machineId,
        groupId: group.body.id,
        machineShareId: machineShare.body.id,
        groupShareId: groupShare.body.id,
        storeId: store.body.id,
        credentialId2: credential.body.id,
        credentialShareId: credentialShare.body.id,
        connectionId,
        connectionShareId: randomUUID(),
        flowId: flow.body.id,
        flowShareId: flowShare.body.id,
        runId: run.body.id,
        contentHash: flow.body.contentHash,
      },
    }
  }

  beforeAll(async () => {
    t = await startTestServer(backend)
    const platform = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    ;({ token: tokenA, ids: idsA } = await seedTenant(platform, 'tenant-a'))
    ;({ token: tokenB, ids: idsB, machine: machineB } = await seedTenant(platform, 'tenant-b'))
  })
  afterAll(async () => t.close())

  it('has a table entry for every route in the OpenAPI document, and no stale ones', async () => {
    const document = (await (await fetch(`${t.url}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>
    }
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    )
    expect(documented.map(tableKey).sort()).toEqual(Object.keys(ROUTES).sort())
  })

  for (const [route, spec] of Object.entries(ROUTES)) {
    const [method, path] = route.split(' ') as [string, string]
    const hasParams = path.includes('{')
    it(`${route}: another tenant's resource looks exactly like one that never existed`, async () => {
      const as = async (): Promise<Record<string, string>> =>
        spec.asMachine ? { 'x-desklink-machine-assertion': await machineB.assertion() } : {}
      if (!hasParams) {
        const answer = await api(t.url, tokenB, method, path, spec.body?.(idsB), await as())
        for (const id of Object.values(idsA)) expect(answer.text).not.toContain(id)
        return
      }
      const foreign = await api(
        t.url,
        tokenB,
        method,
        fill(path, idsA),
        spec.body?.(idsA),
        await as(),
      )
      const missing = await api(
        t.url,
        tokenB,
        method,
        fill(path, neverExisting()),
        spec.body?.(neverExisting()),
        await as(),
      )
      expect(foreign.status, foreign.text).toBe(404)
      expect(foreign.status).toBe(missing.status)
      expect(foreign.body.error).toEqual(missing.body.error)
      expect(Object.keys(foreign.body).sort()).toEqual(['error', 'requestId'])
      for (const id of Object.values(idsA)) expect(foreign.text).not.toContain(id)
    })
  }

  it("names another tenant's user in a role assignment exactly like a user that never existed", async () => {
    const path = `/environments/${idsB.environmentId}/role-assignments`
    const foreign = await api(t.url, tokenB, 'POST', path, {
      principalType: 'user',
      principalId: idsA.userId,
      role: 'MachineUser',
    })
    const missing = await api(t.url, tokenB, 'POST', path, {
      principalType: 'user',
      principalId: randomUUID(),
      role: 'MachineUser',
    })
    expect(foreign.status).toBe(400)
    expect(foreign.body.error).toEqual(missing.body.error)
  })

  it("names another tenant's machine as a connection target exactly like one that never existed", async () => {
    const body = (machineId: string) => ({
      name: 'x',
      target: { machineId },
      username: 'svc',
      password: 'p',
    })
    const foreign = await api(
      t.url,
      tokenB,
      'POST',
      `/environments/${idsB.environmentId}/connections`,
      body(idsA.machineId),
    )
    const missing = await api(
      t.url,
      tokenB,
      'POST',
      `/environments/${idsB.environmentId}/connections`,
      body(randomUUID()),
    )
    expect(foreign.status).toBe(404)
    expect(foreign.body.error).toEqual(missing.body.error)
  })

  it('leaves every resource of tenant A as it was', async () => {
    expect((await api(t.url, tokenA, 'GET', `/users/${idsA.userId}`)).body.status).toBe('active')
    expect(
      (await api(t.url, tokenA, 'GET', `/service-principals/${idsA.servicePrincipalId}`)).body
        .status,
    ).toBe('active')
    const credentials = await api(
      t.url,
      tokenA,
      'GET',
      `/service-principals/${idsA.servicePrincipalId}/credentials`,
    )
    expect(credentials.body.items.map((c: { id: string }) => c.id)).toEqual([idsA.credentialId])
    const environment = await api(t.url, tokenA, 'GET', `/environments/${idsA.environmentId}`)
    expect(environment.body.name).toBe('default')
    const assignments = await api(
      t.url,
      tokenA,
      'GET',
      `/environments/${idsA.environmentId}/role-assignments`,
    )
    expect(assignments.body.items.map((a: { id: string }) => a.id)).toContain(idsA.assignmentId)
    expect((await api(t.url, tokenA, 'GET', `/tenants/${idsA.tenantId}`)).body.displayName).toBe(
      'tenant-a',
    )
    const nameOf = async (path: string) =>
      (await api(t.url, tokenA, 'GET', path)).body.name as string
    expect(await nameOf(`/machines/${idsA.machineId}`)).toBe('tenant-a-machine')
    expect(await nameOf(`/machine-groups/${idsA.groupId}`)).toBe('tenant-a-group')
    expect(await nameOf(`/credentials/${idsA.credentialId2}`)).toBe('tenant-a-credential')
    expect(await nameOf(`/connections/${idsA.connectionId}`)).toBe('tenant-a-connection')
    expect(await nameOf(`/secret-stores/${idsA.storeId}`)).toBe('tenant-a-vault')
    const shares = async (path: string) =>
      (await api(t.url, tokenA, 'GET', `${path}/shares`)).body.items.length as number
    expect(await shares(`/machines/${idsA.machineId}`)).toBe(1)
    expect(await shares(`/machine-groups/${idsA.groupId}`)).toBe(1)
    expect(await shares(`/credentials/${idsA.credentialId2}`)).toBe(1)
  })

  it('answers for a deactivated tenant exactly as for one that never existed, and its tokens stop working', async () => {
    const platform = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const { token, ids } = await seedTenant(platform, 'tenant-c')
    expect((await api(t.url, token, 'GET', '/me')).status).toBe(200)
    expect(
      (await api(t.url, platform, 'PATCH', `/tenants/${ids.tenantId}`, { status: 'deactivated' }))
        .status,
    ).toBe(200)
    for (const suffix of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
      const deactivated = await fetch(`${t.url}/t/tenant-c${suffix}`)
      const unknown = await fetch(`${t.url}/t/no-such-tenant${suffix}`)
      expect(deactivated.status).toBe(404)
      expect(((await deactivated.json()) as { error: unknown }).error).toEqual(
        ((await unknown.json()) as { error: unknown }).error,
      )
    }
    const after = await api(t.url, token, 'GET', '/me')
    expect(after.status).toBe(401)
    expect(after.body.error.code).toBe('InvalidToken')
  })
})
