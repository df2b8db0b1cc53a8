/**
 * Credentials against protocol-level fakes of HashiCorp Vault (KV v2), Azure Key Vault (through
 * the official SDK) and CyberArk CCP (mutual TLS, read by the machine), all on 127.0.0.1 over
 * HTTPS with a throwaway CA: read, missing, denied, rotation picked up at the next resolution,
 * the store unreachable, nothing cached. Plus the built-in store, immutability, and canaries:
 * planted secrets appear in no database file, log line or API response.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { openWithGroupKey } from '@desklink/protocol'
import {
  createLogger,
  type ResolvedCredential,
  resolveServerConfig,
  startServer,
} from '@desklink/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openCredential } from '../../packages/agent/src/index.ts'
import {
  type AzureKeyVaultFake,
  startAzureKeyVaultFake,
} from '../support/fakes/azure-key-vault-fake.ts'
import { type CcpFake, startCyberArkCcpFake } from '../support/fakes/cyberark-ccp-fake.ts'
import { createTestCa, type TestCa } from '../support/fakes/test-ca.ts'
import { startVaultFake, type VaultFake } from '../support/fakes/vault-fake.ts'
import { registerTestMachine, type TestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  type InProcessTestServer,
  signIn,
  startTestServer,
} from '../support/test-server.ts'

const CANARY = {
  vaultValue: 'canary-vault-secret-91ab2',
  vaultRotated: 'canary-vault-rotated-77c1d',
  vaultSecretId: 'canary-approle-secret-id-5f3e',
  azureValue: 'canary-azure-secret-0d9e4',
  azureRotated: 'canary-azure-rotated-3b8a1',
  azureClientSecret: 'canary-azure-client-secret-6c2f',
  ccpContent: 'canary-ccp-password-2a7b9',
  ccpRotated: 'canary-ccp-rotated-8e4d0',
  builtinFlow: 'canary-builtin-flow-4c1a8',
  builtinConnection: 'canary-builtin-connection-9d2b7',
}

describe('credentials and secret stores', () => {
  let ca: TestCa
  let vault: VaultFake
  let azure: AzureKeyVaultFake
  let ccp: CcpFake
  let t: InProcessTestServer
  let token: string
  let tenantId: string
  let environmentId: string
  let machine: TestMachine
  const bodies: string[] = []

  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await api(t.url, token, method, path, body)
    bodies.push(answer.text)
    return answer
  }
  const resolve = (
    credentialId: string,
    groupId = machine.standaloneGroupId,
  ): Promise<ResolvedCredential> => t.server.resolveCredential({ tenantId, credentialId, groupId })
  const open = async (credentialId: string) =>
    (await openCredential(await resolve(credentialId), machine.standaloneGroupPrivateKey)).secret
  const codeOf = async (work: Promise<unknown>) =>
    (
      (await work.then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string } | undefined
    )?.code

  beforeAll(async () => {
    ca = createTestCa()
    const tls = ca.issueServerCertificate()
    vault = await startVaultFake({ tls })
    vault.addPolicy('payroll', ['secret/data/apps/payroll'])
    vault.addAppRole({ roleId: 'desklink', secretId: CANARY.vaultSecretId, policies: ['payroll'] })
    vault.putSecret('secret', 'apps/payroll', { password: CANARY.vaultValue, user: 'payroll-svc' })
    vault.putSecret('secret', 'apps/other', { password: 'not-for-us' })
    azure = await startAzureKeyVaultFake({
      tls,
      tenantId: 'contoso-tenant',
      clients: [{ clientId: 'desklink-app', clientSecret: CANARY.azureClientSecret }],
    })
    azure.setSecret('erp-password', CANARY.azureValue)
    azure.setSecret('forbidden', 'not-for-us')
    azure.deny('desklink-app', 'forbidden')
    ccp = await startCyberArkCcpFake({ tls, caPem: ca.caPem })
    ccp.setAccount('RPA', 'Root', 'finance-bot', { userName: 'finbot', content: CANARY.ccpContent })

    t = await startTestServer('sqlite')
    token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    const me = await api(t.url, token, 'GET', '/me')
    tenantId = me.body.tenant.id
    environmentId = me.body.roles[0].environmentId
    machine = await registerTestMachine(t.url, token, environmentId, 'credential-box')
  })
  afterAll(async () => {
    await Promise.all([vault?.stop(), azure?.stop(), ccp?.stop()])
    await t?.close()
    ca?.remove()
  })

  describe('HashiCorp Vault KV v2 (AppRole)', () => {
    let storeId: string
    let credentialId: string
    beforeAll(async () => {
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'vault',
        settings: {
          type: 'hashicorpVault',
          address: vault.url,
          auth: { method: 'approle', roleId: 'desklink', secretId: CANARY.vaultSecretId },
          caCertificate: ca.caPem,
        },
      })
      expect(store.status).toBe(201)
      expect(store.body.summary).toEqual({ address: vault.url, auth: 'approle' })
      storeId = store.body.id
    })

    it('creates a credential after reading the secret, and shows only where it lives', async () => {
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'payroll',
        usage: 'connection',
        username: {
          fromStore: { store: 'hashicorpVault', storeId, path: 'apps/payroll', key: 'user' },
        },
        secret: { store: 'hashicorpVault', storeId, path: 'apps/payroll', key: 'password' },
      })
      expect(created.status).toBe(201)
      expect(created.body.secret).toEqual({
        store: 'hashicorpVault',
        storeId,
        mount: 'secret',
        path: 'apps/payroll',
        key: 'password',
      })
      credentialId = created.body.id
    })

    it('resolves at run time, sealed to the machine group', async () => {
      const resolved = await resolve(credentialId)
      expect(resolved.kind).toBe('sealed')
      expect(JSON.stringify(resolved)).not.toContain(CANARY.vaultValue)
      expect(await openCredential(resolved, machine.standaloneGroupPrivateKey)).toEqual({
        username: 'payroll-svc',
        secret: CANARY.vaultValue,
      })
    })

    it('picks up a rotated value at the next resolution, with no edit', async () => {
      vault.putSecret('secret', 'apps/payroll', {
        password: CANARY.vaultRotated,
        user: 'payroll-svc',
      })
      expect(await open(credentialId)).toBe(CANARY.vaultRotated)
    })

    it('refuses a secret the store may not read, with the reference message', async () => {
      const denied = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'other',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'hashicorpVault', storeId, path: 'apps/other', key: 'password' },
      })
      expect(denied.status).toBe(403)
      expect(denied.body.error).toMatchObject({
        code: 'SecretReadDenied',
        message: "User is not authorized to read secrets from 'secret/apps/other'.",
      })
    })

    it('refuses a missing secret', async () => {
      const missing = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'missing',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'hashicorpVault', storeId, path: 'apps/payroll', key: 'nope' },
      })
      expect(missing.status).toBe(422)
      expect(missing.body.error.code).toBe('SecretNotFound')
    })

    it('fails with a coded error when the store is down, serving nothing from a cache', async () => {
      vault.setDown(true)
      try {
        const tested = await call('POST', `/credentials/${credentialId}/test`)
        expect(tested.status).toBe(502)
        expect(tested.body.error.code).toBe('SecretStoreUnreachable')
        expect(await codeOf(resolve(credentialId))).toBe('SecretStoreUnreachable')
      } finally {
        vault.setDown(false)
      }
      expect((await call('POST', `/credentials/${credentialId}/test`)).body).toEqual({
        readable: true,
        source: 'secret/apps/payroll#password',
      })
    })

    it('never lets the username or the secret reference change', async () => {
      const changed = await call('PATCH', `/credentials/${credentialId}`, {
        secret: { store: 'builtin', value: 'x' },
      })
      expect(changed.status).toBe(400)
      expect(changed.body.error.code).toBe('CredentialReferenceImmutable')
      const renamed = await call('PATCH', `/credentials/${credentialId}`, {
        name: 'payroll-renamed',
        description: 'nightly',
      })
      expect(renamed.body).toMatchObject({ name: 'payroll-renamed', description: 'nightly' })
      expect((await call('GET', `/credentials/${credentialId}/dependencies`)).body).toEqual({
        connections: [],
      })
    })
  })

  describe('Azure Key Vault (official SDK, client secret)', () => {
    let storeId: string
    let credentialId: string
    beforeAll(async () => {
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'akv',
        settings: {
          type: 'azureKeyVault',
          vaultUrl: azure.url,
          tenantId: 'contoso-tenant',
          clientId: 'desklink-app',
          auth: { method: 'clientSecret', clientSecret: CANARY.azureClientSecret },
          authorityHost: azure.url,
          caCertificate: ca.caPem,
        },
      })
      expect(store.status).toBe(201)
      storeId = store.body.id
    })

    it('reads at creation and resolves at run time', async () => {
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'erp',
        usage: 'flow',
        username: { value: 'erp-bot' },
        secret: { store: 'azureKeyVault', storeId, secretName: 'erp-password' },
      })
      expect(created.status).toBe(201)
      credentialId = created.body.id
      expect(await open(credentialId)).toBe(CANARY.azureValue)
    })

    it('picks up a new version at the next resolution', async () => {
      azure.setSecret('erp-password', CANARY.azureRotated)
      expect(await open(credentialId)).toBe(CANARY.azureRotated)
    })

    it('maps denied and missing secrets to coded errors', async () => {
      const denied = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'az-denied',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'azureKeyVault', storeId, secretName: 'forbidden' },
      })
      expect(denied.body.error.code).toBe('SecretReadDenied')
      expect(denied.body.error.message).toContain('User is not authorized to read secrets from')
      const missing = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'az-missing',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'azureKeyVault', storeId, secretName: 'nothing-here' },
      })
      expect(missing.body.error.code).toBe('SecretNotFound')
    })

    it('refuses a wrong client secret of the store as denied', async () => {
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'akv-wrong',
        settings: {
          type: 'azureKeyVault',
          vaultUrl: azure.url,
          tenantId: 'contoso-tenant',
          clientId: 'desklink-app',
          auth: { method: 'clientSecret', clientSecret: 'wrong-secret' },
          authorityHost: azure.url,
          caCertificate: ca.caPem,
        },
      })
      const attempt = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'az-wrong',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'azureKeyVault', storeId: store.body.id, secretName: 'erp-password' },
      })
      expect(attempt.body.error.code).toBe('SecretReadDenied')
    })
  })

  describe('Azure Key Vault (official SDK, certificate)', () => {
    it('signs in with a certificate of the app registration and reads the secret', async () => {
      const certificate = ca.issueClientCertificate('desklink-cert-app', { keyType: 'rsa' })
      azure.addClient({ clientId: 'desklink-cert-app', certificatePem: certificate.certPem })
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'akv-certificate',
        settings: {
          type: 'azureKeyVault',
          vaultUrl: azure.url,
          tenantId: 'contoso-tenant',
          clientId: 'desklink-cert-app',
          auth: {
            method: 'certificate',
            certificatePem: `${certificate.certPem}\n${certificate.keyPem}`,
          },
          authorityHost: azure.url,
          caCertificate: ca.caPem,
        },
      })
      expect(store.body.summary).toMatchObject({ auth: 'certificate' })
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'erp-by-certificate',
        usage: 'flow',
        username: { value: 'erp-bot' },
        secret: { store: 'azureKeyVault', storeId: store.body.id, secretName: 'erp-password' },
      })
      expect(created.status).toBe(201)
      expect(await open(created.body.id)).toBe(CANARY.azureRotated)
    })

    it('answers SecretStoreUnreachable when the vault cannot be reached', async () => {
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'akv-nowhere',
        settings: {
          type: 'azureKeyVault',
          vaultUrl: 'https://127.0.0.1:1',
          tenantId: 'contoso-tenant',
          clientId: 'desklink-app',
          auth: { method: 'clientSecret', clientSecret: CANARY.azureClientSecret },
          authorityHost: 'https://127.0.0.1:1',
          caCertificate: ca.caPem,
        },
      })
      const attempt = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'az-nowhere',
        usage: 'flow',
        username: { value: 'x' },
        secret: { store: 'azureKeyVault', storeId: store.body.id, secretName: 'erp-password' },
      })
      expect(attempt.status).toBe(502)
      expect(attempt.body.error.code).toBe('SecretStoreUnreachable')
    })
  })

  describe('CyberArk CCP (read by the machine, mutual TLS)', () => {
    let storeId: string
    let credentialId: string
    beforeAll(async () => {
      const client = ca.issueClientCertificate('desklink-rpa')
      ccp.allowApplication('DesklinkRPA', { serial: client.serial })
      const store = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'ccp',
        settings: {
          type: 'cyberArkCcp',
          url: ccp.url,
          appId: 'DesklinkRPA',
          safe: 'RPA',
          caCertificate: ca.caPem,
        },
      })
      storeId = store.body.id
      const application = await call('PUT', `/machines/${machine.machineId}/cyberark-application`, {
        appId: 'DesklinkRPA',
        certificatePem: `${client.certPem}\n${client.keyPem}`,
      })
      expect(application.status).toBe(200)
      expect(application.body.certificateSubject).toContain('desklink-rpa')
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'finance',
        usage: 'connection',
        username: { fromStore: { store: 'cyberArkCcp', storeId, object: 'finance-bot' } },
        secret: { store: 'cyberArkCcp', storeId, object: 'finance-bot' },
      })
      expect(created.status).toBe(201)
      credentialId = created.body.id
    })

    it('lets the machine fetch the account with the sealed client certificate', async () => {
      const resolved = await resolve(credentialId)
      expect(resolved.kind).toBe('cyberArk')
      expect(await openCredential(resolved, machine.standaloneGroupPrivateKey)).toEqual({
        username: 'finbot',
        secret: CANARY.ccpContent,
      })
    })

    it('picks up a changed password at the next fetch', async () => {
      ccp.setAccount('RPA', 'Root', 'finance-bot', {
        userName: 'finbot',
        content: CANARY.ccpRotated,
      })
      expect(await open(credentialId)).toBe(CANARY.ccpRotated)
    })

    it('maps a missing object, a refused application and an unreachable CCP to codes', async () => {
      ccp.removeAccount('RPA', 'Root', 'finance-bot')
      expect(await codeOf(open(credentialId))).toBe('SecretNotFound')
      ccp.setAccount('RPA', 'Root', 'finance-bot', {
        userName: 'finbot',
        content: CANARY.ccpRotated,
      })
      const stranger = ca.issueClientCertificate('stranger')
      await call('PUT', `/machines/${machine.machineId}/cyberark-application`, {
        appId: 'DesklinkRPA',
        certificatePem: `${stranger.certPem}\n${stranger.keyPem}`,
      })
      expect(await codeOf(open(credentialId))).toBe('SecretReadDenied')
      ccp.setDown(true)
      expect(await codeOf(open(credentialId))).toMatch(/SecretStoreUnreachable|SecretReadDenied/)
      ccp.setDown(false)
    })

    it('refuses a CyberArk application on a machine shared with others', async () => {
      const other = await registerTestMachine(t.url, token, environmentId, 'shared-box')
      const user = await call('POST', '/users', {
        username: 'share-peer',
        password: 'share-peer-password',
      })
      await call('POST', `/machines/${other.machineId}/shares`, {
        principalType: 'user',
        principalId: user.body.id,
        access: 'user',
      })
      const client = ca.issueClientCertificate('shared')
      const refused = await call('PUT', `/machines/${other.machineId}/cyberark-application`, {
        appId: 'DesklinkRPA',
        certificatePem: `${client.certPem}\n${client.keyPem}`,
      })
      expect(refused.status).toBe(409)
      expect(refused.body.error.code).toBe('CyberArkOnSharedResource')
      // And the other way round: a machine with a CyberArk application cannot be shared.
      const peer = await call('POST', '/users', {
        username: 'share-peer-2',
        password: 'share-peer-password',
      })
      const share = await call('POST', `/machines/${machine.machineId}/shares`, {
        principalType: 'user',
        principalId: peer.body.id,
        access: 'user',
      })
      expect(share.status).toBe(409)
      expect(share.body.error.code).toBe('CyberArkOnSharedResource')
    })
  })

  describe('the built-in store', () => {
    it('keeps a flow secret under the master key and seals it to the group at run time', async () => {
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'builtin-flow',
        usage: 'flow',
        username: { value: 'svc' },
        secret: { store: 'builtin', value: CANARY.builtinFlow },
      })
      expect(created.body.secret).toEqual({ store: 'builtin' })
      expect(await open(created.body.id)).toBe(CANARY.builtinFlow)
    })

    it('seals a connection secret to the chosen group on create; another group cannot use it', async () => {
      const created = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'builtin-connection',
        usage: 'connection',
        username: { value: 'svc' },
        secret: {
          store: 'builtin',
          value: CANARY.builtinConnection,
          groupId: machine.standaloneGroupId,
        },
      })
      expect(created.status).toBe(201)
      const resolved = await resolve(created.body.id)
      expect(
        resolved.kind === 'sealed' &&
          (await openWithGroupKey(
            machine.standaloneGroupPrivateKey,
            resolved.sealedSecret,
            resolved.context,
          )),
      ).toBe(CANARY.builtinConnection)
      const other = await registerTestMachine(t.url, token, environmentId, 'other-box')
      expect(await codeOf(resolve(created.body.id, other.standaloneGroupId))).toBe(
        'SecretReadDenied',
      )
      const noGroup = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'no-group',
        usage: 'connection',
        username: { value: 'svc' },
        secret: { store: 'builtin', value: 'x' },
      })
      expect(noGroup.status).toBe(400)
    })
  })

  describe('sharing and store rules', () => {
    it('lets a user-can-share pass on use, never co-ownership, and not take shares away or see dependencies', async () => {
      const users: Record<string, { id: string; token: string }> = {}
      for (const name of ['sharer', 'receiver']) {
        const created = await call('POST', '/users', {
          username: name,
          password: `${name}-password-1`,
        })
        await call('POST', `/environments/${environmentId}/role-assignments`, {
          principalType: 'user',
          principalId: created.body.id,
          role: 'MachineUser',
        })
        users[name] = {
          id: created.body.id,
          token: (await signIn(t.url, 'default', name, `${name}-password-1`)).access_token,
        }
      }
      const credential = await call('POST', `/environments/${environmentId}/credentials`, {
        name: 'shared-one',
        usage: 'flow',
        username: { value: 'svc' },
        secret: { store: 'builtin', value: 'shared-one-secret' },
      })
      await call('POST', `/credentials/${credential.body.id}/shares`, {
        principalType: 'user',
        principalId: users.sharer.id,
        access: 'userCanShare',
      })
      const asSharer = (method: string, path: string, body?: unknown) =>
        api(t.url, users.sharer.token, method, path, body)
      const escalate = await asSharer('POST', `/credentials/${credential.body.id}/shares`, {
        principalType: 'user',
        principalId: users.receiver.id,
        access: 'coOwner',
      })
      expect(escalate.status).toBe(403)
      const passOn = await asSharer('POST', `/credentials/${credential.body.id}/shares`, {
        principalType: 'user',
        principalId: users.receiver.id,
        access: 'user',
      })
      expect(passOn.status).toBe(201)
      expect(
        (await asSharer('DELETE', `/credentials/${credential.body.id}/shares/${passOn.body.id}`))
          .status,
      ).toBe(403)
      expect(
        (
          await asSharer('PATCH', `/credentials/${credential.body.id}`, {
            name: 'renamed-by-sharer',
          })
        ).status,
      ).toBe(403)
      // What depends on it is for those who manage it.
      expect(
        (await asSharer('GET', `/credentials/${credential.body.id}/dependencies`)).status,
      ).toBe(403)
      expect((await call('GET', `/credentials/${credential.body.id}/dependencies`)).body).toEqual({
        connections: [],
      })
    })

    it('refuses to delete a store that credentials use, and stores without TLS', async () => {
      const stores = await call('GET', `/environments/${environmentId}/secret-stores`)
      const vaultStore = (stores.body.items as { id: string; name: string }[]).find(
        (s) => s.name === 'vault',
      )!
      const refused = await call('DELETE', `/secret-stores/${vaultStore.id}`)
      expect(refused.status).toBe(409)
      expect(refused.body.error.code).toBe('SecretStoreInUse')
      const plain = await call('POST', `/environments/${environmentId}/secret-stores`, {
        name: 'plain-http',
        settings: {
          type: 'hashicorpVault',
          address: 'http://127.0.0.1:8200',
          auth: { method: 'token', token: 't' },
        },
      })
      expect(plain.status).toBe(400)
      expect(plain.body.error.code).toBe('InvalidRequestBody')
    })
  })

  describe('canaries', () => {
    const planted = () => Object.values(CANARY)
    const found = (text: string) => planted().filter((secret) => text.includes(secret))

    it('never returns a planted secret in an API response', async () => {
      const list = await call('GET', `/environments/${environmentId}/credentials`)
      for (const credential of list.body.items as { id: string }[])
        await call('GET', `/credentials/${credential.id}`)
      await call('GET', `/environments/${environmentId}/secret-stores`)
      expect(bodies.length).toBeGreaterThan(20)
      expect(found(bodies.join('\n'))).toEqual([])
    })

    it('never writes a planted secret to the logs', () => {
      expect(found(t.logs.join('\n'))).toEqual([])
    })

    it('leaves nothing behind after a credential is deleted', async () => {
      const list = await call('GET', `/environments/${environmentId}/credentials`)
      const victim = (list.body.items as { id: string; name: string }[]).find(
        (c) => c.name === 'builtin-flow',
      )!
      expect((await call('DELETE', `/credentials/${victim.id}`)).status).toBe(204)
      expect((await call('GET', `/credentials/${victim.id}`)).status).toBe(404)
      expect(await codeOf(resolve(victim.id))).toBe('ResourceNotFound')
    })

    it('never stores a planted secret in the database', () => {
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
      expect(found(stored)).toEqual([])
    })
  })
})

describe('secrets at rest without a master key', () => {
  it('refuses to start rather than store a secret unprotected', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'desklink-nokey-'))
    try {
      const config = resolveServerConfig({
        DESKLINK_DATA_DIR: dataDir,
        DESKLINK_PORT: '0',
        DESKLINK_CREATE_MASTER_KEY: 'false',
      })
      await expect(startServer(config, createLogger({ level: 'silent' }))).rejects.toThrow(
        /No master key/,
      )
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
