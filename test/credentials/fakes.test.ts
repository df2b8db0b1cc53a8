/**
 * The credential-store fakes speak their real protocols: Vault's HTTP API and CyberArk CCP are
 * driven with node:https exactly as a client would (CCP over mutual TLS), and the Azure fake
 * with the official @azure/identity and @azure/keyvault-secrets clients, so Desklink's clients
 * can be tested against them with confidence.
 */
import { constants, createHash, randomUUID, sign, X509Certificate } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'

import { ClientCertificateCredential, ClientSecretCredential } from '@azure/identity'
import { SecretClient } from '@azure/keyvault-secrets'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

import {
  type AzureKeyVaultFake,
  startAzureKeyVaultFake,
} from '../support/fakes/azure-key-vault-fake.ts'
import { type CcpFake, startCyberArkCcpFake } from '../support/fakes/cyberark-ccp-fake.ts'
import {
  createTestCa,
  type IssuedClientCertificate,
  type TestCa,
} from '../support/fakes/test-ca.ts'
import { startVaultFake, type VaultFake } from '../support/fakes/vault-fake.ts'

interface JsonResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Record<string, unknown>
}

function requestJson(
  url: string,
  options: {
    ca: string
    method?: string
    headers?: Record<string, string>
    body?: unknown
    form?: Record<string, string>
    cert?: string
    key?: string
  },
): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = options.form
      ? new URLSearchParams(options.form).toString()
      : options.body === undefined
        ? undefined
        : JSON.stringify(options.body)
    const contentType = options.form ? 'application/x-www-form-urlencoded' : 'application/json'
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        ...(options.cert !== undefined ? { cert: options.cert, key: options.key } : {}),
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': contentType } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          try {
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
            })
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)))
          }
        })
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

describe('HashiCorp Vault fake', () => {
  let ca: TestCa
  let vault: VaultFake
  const roleId = randomUUID()
  const secretId = randomUUID()

  const login = async (): Promise<string> => {
    const response = await requestJson(`${vault.url}/v1/auth/approle/login`, {
      ca: ca.caPem,
      method: 'POST',
      body: { role_id: roleId, secret_id: secretId },
    })
    expect(response.status).toBe(200)
    return (response.body.auth as { client_token: string }).client_token
  }
  const read = (path: string, token?: string) =>
    requestJson(`${vault.url}/v1/${path}`, {
      ca: ca.caPem,
      headers: {
        ...(token !== undefined ? { 'x-vault-token': token } : {}),
        'x-vault-namespace': 'desklink',
      },
    })

  beforeAll(async () => {
    ca = createTestCa()
    vault = await startVaultFake({ tls: ca.issueServerCertificate() })
    vault.addPolicy('apps-read', ['secret/data/apps/'])
    vault.addAppRole({ roleId, secretId, policies: ['apps-read'] })
    vault.putSecret('secret', 'apps/db', { username: 'desklink', password: 'first' })
    vault.putSecret('secret', 'infra/root', { password: 'not yours' })
  })
  afterAll(async () => {
    await vault?.stop()
    ca?.remove()
  })

  it('logs in with AppRole and reads a KV v2 secret in Vault shapes', async () => {
    const login = await requestJson(`${vault.url}/v1/auth/approle/login`, {
      ca: ca.caPem,
      method: 'POST',
      body: { role_id: roleId, secret_id: secretId },
    })
    expect(login.status).toBe(200)
    expect(login.body.auth).toMatchObject({
      lease_duration: 3600,
      renewable: true,
      policies: ['default', 'apps-read'],
    })
    const token = (login.body.auth as { client_token: string }).client_token
    expect(token).toMatch(/^hvs\./)
    expect(await read('auth/token/lookup-self', token)).toMatchObject({
      status: 200,
      body: { data: { policies: ['default', 'apps-read'], path: 'auth/approle/login' } },
    })

    const response = await read('secret/data/apps/db', token)
    expect(response.status).toBe(200)
    expect(response.body).toMatchObject({
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: {
        data: { username: 'desklink', password: 'first' },
        metadata: { deletion_time: '', destroyed: false, version: 1 },
      },
      wrap_info: null,
      warnings: null,
      auth: null,
    })
    expect(vault.requests.at(-1)).toEqual({
      method: 'GET',
      path: '/v1/secret/data/apps/db',
      query: {},
      token: true,
      namespace: 'desklink',
    })
  })

  it('refuses a wrong secret id, a missing token and a path outside the policy', async () => {
    const wrong = await requestJson(`${vault.url}/v1/auth/approle/login`, {
      ca: ca.caPem,
      method: 'POST',
      body: { role_id: roleId, secret_id: 'nope' },
    })
    expect(wrong).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } })

    expect(await read('secret/data/apps/db')).toMatchObject({
      status: 403,
      body: { errors: ['permission denied'] },
    })
    const token = await login()
    expect(await read('secret/data/infra/root', token)).toMatchObject({
      status: 403,
      body: { errors: ['permission denied'] },
    })
  })

  it('answers 404 for a missing path or version', async () => {
    const token = await login()
    expect(await read('secret/data/apps/nothing', token)).toMatchObject({
      status: 404,
      body: { errors: [] },
    })
    expect(await read('secret/data/apps/db?version=9', token)).toMatchObject({ status: 404 })
  })

  it('serves a rotated secret as the new latest version and keeps the old one by number', async () => {
    vault.putSecret('secret', 'apps/rotating', { password: 'v1' })
    const token = await login()
    expect(vault.putSecret('secret', 'apps/rotating', { password: 'v2' })).toBe(2)
    const latest = await read('secret/data/apps/rotating', token)
    expect(latest.body.data).toMatchObject({ data: { password: 'v2' }, metadata: { version: 2 } })
    const first = await read('secret/data/apps/rotating?version=1', token)
    expect(first.body.data).toMatchObject({ data: { password: 'v1' }, metadata: { version: 1 } })
  })

  it('answers 503 while sealed', async () => {
    const token = await login()
    vault.setDown(true)
    try {
      expect(await read('secret/data/apps/db', token)).toMatchObject({
        status: 503,
        body: { errors: ['Vault is sealed'] },
      })
    } finally {
      vault.setDown(false)
    }
  })

  it('is not trusted by a client holding another CA', async () => {
    const stranger = createTestCa()
    try {
      await expect(read('sys/health').then(() => undefined)).resolves.toBeUndefined()
      await expect(
        requestJson(`${vault.url}/v1/sys/health`, { ca: stranger.caPem }),
      ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
    } finally {
      stranger.remove()
    }
  })
})

describe('Azure Key Vault fake, driven by the official SDK', () => {
  let ca: TestCa
  let fake: AzureKeyVaultFake
  let certificateClient: IssuedClientCertificate
  const tenantId = randomUUID()
  const clientId = randomUUID()
  const clientSecret = `secret-${randomUUID()}`
  const certificateClientId = randomUUID()

  const secretClient = (secret = clientSecret) =>
    new SecretClient(
      fake.url,
      new ClientSecretCredential(tenantId, clientId, secret, {
        authorityHost: fake.url,
        disableInstanceDiscovery: true,
        tlsOptions: { ca: ca.caPem },
      }),
      { disableChallengeResourceVerification: true, tlsOptions: { ca: ca.caPem } },
    )

  beforeAll(async () => {
    ca = createTestCa()
    certificateClient = ca.issueClientCertificate('desklink-akv', { keyType: 'rsa' })
    fake = await startAzureKeyVaultFake({
      tls: ca.issueServerCertificate(),
      tenantId,
      clients: [
        { clientId, clientSecret },
        { clientId: certificateClientId, certificatePem: certificateClient.certPem },
      ],
    })
  })
  afterAll(async () => {
    await fake?.stop()
    ca?.remove()
  })

  it('reads the latest secret and a given version through the challenge and token flow', async () => {
    const first = fake.setSecret('db-password', 'hunter2')
    const client = secretClient()

    const secret = await client.getSecret('db-password')
    expect(secret.value).toBe('hunter2')
    expect(secret.properties.version).toBe(first)
    expect(secret.properties.vaultUrl).toBe(fake.url)
    expect(secret.properties.enabled).toBe(true)
    expect(secret.properties.recoveryLevel).toBe('Recoverable+Purgeable')

    const old = await client.getSecret('db-password', { version: first })
    expect(old.value).toBe('hunter2')

    const vaultCalls = fake.requests.filter((entry) => entry.path.startsWith('/secrets/'))
    expect(vaultCalls[0]).toMatchObject({ authorization: false })
    expect(vaultCalls[1]).toMatchObject({ authorization: true, clientId })
    expect(vaultCalls[0].query['api-version']).toBeTruthy()
    expect(fake.requests).toContainEqual(
      expect.objectContaining({ grantType: 'client_credentials', clientId }),
    )
  })

  it('serves a rotated secret as latest while the old version stays readable', async () => {
    const before = fake.setSecret('rotating', 'one')
    const client = secretClient()
    expect((await client.getSecret('rotating')).value).toBe('one')
    const after = fake.setSecret('rotating', 'two')
    expect(after).toMatch(/^[0-9a-f]{32}$/)
    expect((await client.getSecret('rotating')).value).toBe('two')
    expect((await client.getSecret('rotating', { version: before })).value).toBe('one')
  })

  it('reports a missing secret as SecretNotFound and a denied one as Forbidden', async () => {
    const client = secretClient()
    await expect(client.getSecret('no-such-secret')).rejects.toMatchObject({
      statusCode: 404,
      code: 'SecretNotFound',
    })
    fake.setSecret('payroll', 'private')
    fake.deny(clientId, 'payroll')
    await expect(client.getSecret('payroll')).rejects.toMatchObject({
      statusCode: 403,
      code: 'Forbidden',
    })
  })

  it('rejects a wrong client secret at the token endpoint', async () => {
    fake.setSecret('anything', 'value')
    await expect(secretClient('wrong').getSecret('anything')).rejects.toThrow(/AADSTS7000215/)
  })

  it('accepts a certificate assertion signed by the registered certificate', async () => {
    fake.setSecret('by-certificate', 'cert-ok')
    const credential = new ClientCertificateCredential(
      tenantId,
      certificateClientId,
      { certificate: `${certificateClient.certPem}${certificateClient.keyPem}` },
      { authorityHost: fake.url, disableInstanceDiscovery: true, tlsOptions: { ca: ca.caPem } },
    )
    const client = new SecretClient(fake.url, credential, {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca: ca.caPem },
    })
    expect((await client.getSecret('by-certificate')).value).toBe('cert-ok')

    const unregistered = ca.issueClientCertificate('someone-else', { keyType: 'rsa' })
    const impostor = new ClientCertificateCredential(
      tenantId,
      certificateClientId,
      { certificate: `${unregistered.certPem}${unregistered.keyPem}` },
      { authorityHost: fake.url, disableInstanceDiscovery: true, tlsOptions: { ca: ca.caPem } },
    )
    await expect(impostor.getToken('https://vault.azure.net/.default')).rejects.toThrow(
      /AADSTS700027/,
    )
  })

  it('checks the assertion signature, not only the certificate thumbprint it names', async () => {
    const forger = ca.issueClientCertificate('forger', { keyType: 'rsa' })
    const now = Math.floor(Date.now() / 1000)
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const unsigned = `${encode({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': createHash('sha256')
        .update(new X509Certificate(certificateClient.certPem).raw)
        .digest('base64url'),
    })}.${encode({
      aud: `${fake.url}/${tenantId}/oauth2/v2.0/token`,
      iss: certificateClientId,
      sub: certificateClientId,
      nbf: now,
      exp: now + 600,
      jti: randomUUID(),
    })}`
    const signature = sign('sha256', Buffer.from(unsigned), {
      key: forger.keyPem,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    }).toString('base64url')
    const response = await requestJson(`${fake.url}/${tenantId}/oauth2/v2.0/token`, {
      ca: ca.caPem,
      method: 'POST',
      form: {
        grant_type: 'client_credentials',
        client_id: certificateClientId,
        scope: 'https://vault.azure.net/.default',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: `${unsigned}.${signature}`,
      },
    })
    expect(response).toMatchObject({
      status: 401,
      body: { error: 'invalid_client', error_codes: [700027] },
    })
    expect(response.body.error_description).toContain('signature validation')
  })
})

describe('CyberArk CCP fake over mutual TLS', () => {
  let ca: TestCa
  let foreignCa: TestCa
  let ccp: CcpFake
  let agent: IssuedClientCertificate
  let intruder: IssuedClientCertificate
  let foreign: IssuedClientCertificate

  const get = (query: Record<string, string>, cert: IssuedClientCertificate | null = agent) =>
    requestJson(`${ccp.url}/AIMWebService/api/Accounts?${new URLSearchParams(query)}`, {
      ca: ca.caPem,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
    })

  beforeAll(async () => {
    ca = createTestCa()
    foreignCa = createTestCa()
    agent = ca.issueClientCertificate('desklink-agent')
    intruder = ca.issueClientCertificate('intruder')
    foreign = foreignCa.issueClientCertificate('desklink-agent')
    ccp = await startCyberArkCcpFake({ tls: ca.issueServerCertificate(), caPem: ca.caPem })
    ccp.allowApplication('Desklink', { serial: agent.serial })
    ccp.allowApplication('DesklinkByName', { commonName: 'desklink-agent' })
    ccp.setAccount('Finance', 'Root', 'db-admin', {
      userName: 'dbadmin',
      content: 'first-password',
      address: 'db.internal',
    })
  })
  afterAll(async () => {
    await ccp?.stop()
    ca?.remove()
    foreignCa?.remove()
  })

  it('returns the account to an application authenticated by serial or by CN', async () => {
    const query = { AppID: 'Desklink', Safe: 'Finance', Folder: 'Root', Object: 'db-admin' }
    const response = await get(query)
    expect(response.status).toBe(200)
    expect(response.body).toMatchObject({
      Content: 'first-password',
      UserName: 'dbadmin',
      Address: 'db.internal',
      Safe: 'Finance',
      Folder: 'Root',
      Name: 'db-admin',
      PasswordChangeInProcess: 'False',
    })
    expect(response.body.PolicyID).toEqual(expect.any(String))
    expect(ccp.requests.at(-1)?.clientCertificate).toEqual({
      serial: agent.serial,
      commonName: 'desklink-agent',
    })

    const byName = await get({ ...query, AppID: 'DesklinkByName' })
    expect(byName.body.Content).toBe('first-password')
  })

  it('answers APPAP004E for a missing object', async () => {
    const response = await get({ AppID: 'Desklink', Safe: 'Finance', Object: 'nothing' })
    expect(response.status).toBe(404)
    expect(response.body.ErrorCode).toBe('APPAP004E')
    expect(response.body.ErrorMsg).toContain('[Safe=Finance;Folder=Root;Object=nothing]')
  })

  it('refuses a certificate that does not authenticate the AppID, and an unknown AppID', async () => {
    const query = { Safe: 'Finance', Object: 'db-admin' }
    expect(await get({ AppID: 'Desklink', ...query }, intruder)).toMatchObject({
      status: 403,
      body: { ErrorCode: 'APPAP306E' },
    })
    expect(await get({ AppID: 'Unknown', ...query })).toMatchObject({
      status: 403,
      body: { ErrorCode: 'APPAP008E' },
    })
  })

  it('serves the new content after a rotation', async () => {
    ccp.setAccount('Finance', 'Root', 'rotating', { userName: 'svc', content: 'before' })
    const query = { AppID: 'Desklink', Safe: 'Finance', Object: 'rotating' }
    expect((await get(query)).body.Content).toBe('before')
    ccp.setAccount('Finance', 'Root', 'rotating', { userName: 'svc', content: 'after' })
    expect((await get(query)).body.Content).toBe('after')
  })

  it('answers APPAP282E during a password change when asked to fail on it', async () => {
    ccp.setAccount('Finance', 'Root', 'changing', { userName: 'svc', content: 'old' })
    ccp.setPasswordChangeInProcess('Finance', 'Root', 'changing', true)
    const query = { AppID: 'Desklink', Safe: 'Finance', Object: 'changing' }
    expect((await get(query)).body).toMatchObject({
      Content: 'old',
      PasswordChangeInProcess: 'True',
    })
    expect(await get({ ...query, FailRequestOnPasswordChange: 'true' })).toMatchObject({
      status: 500,
      body: { ErrorCode: 'APPAP282E' },
    })
  })

  it('fails the TLS handshake without a client certificate or with one from another CA', async () => {
    const before = ccp.rejectedHandshakes
    const query = { AppID: 'Desklink', Safe: 'Finance', Object: 'db-admin' }
    const handshakeFailure = { code: expect.stringMatching(/^(ERR_SSL_|ECONNRESET$|EPIPE$)/) }
    await expect(get(query, null)).rejects.toMatchObject(handshakeFailure)
    await expect(get(query, foreign)).rejects.toMatchObject(handshakeFailure)
    await vi.waitFor(() => expect(ccp.rejectedHandshakes).toBe(before + 2))
  })
})
