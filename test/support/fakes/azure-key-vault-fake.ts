/**
 * Microsoft Entra ID and an Azure Key Vault on one HTTPS origin, faithful enough that the
 * official @azure/identity and @azure/keyvault-secrets clients run unmodified against it: OIDC
 * discovery, the v2.0 token endpoint (client_credentials with a client secret or a certificate
 * assertion), the Key Vault bearer challenge, and secret reads by name and version. Tokens are
 * ES256 JWTs signed by a key that lives only in this process; the vault accepts only those.
 */
import {
  constants as cryptoConstants,
  createHash,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

import { listenHttps, queryObject, readBody, sendJson } from './https-fake-server.ts'

export interface AzureFakeClient {
  clientId: string
  clientSecret?: string
  /** PEM certificate registered for the app (its public key checks client assertions). */
  certificatePem?: string
}

export interface AzureKeyVaultFakeRequest {
  readonly method: string
  readonly path: string
  readonly query: Record<string, string>
  /** Whether an Authorization header was sent. */
  readonly authorization: boolean
  /** The app: from the token endpoint's form, or from a valid bearer token at the vault. */
  readonly clientId?: string
  readonly grantType?: string
}

export interface AzureKeyVaultFake {
  /** https://127.0.0.1:<port>: both the authority host and the vault URL. */
  readonly url: string
  readonly tenantId: string
  /** The Key Vault audience; the 401 challenge names it as the resource. */
  readonly resource: string
  readonly requests: AzureKeyVaultFakeRequest[]
  addClient(client: AzureFakeClient): void
  /** Adds a version (random 32-hex id) that becomes the latest; returns the version id. */
  setSecret(name: string, value: string, options?: { contentType?: string }): string
  /** Denies secrets/get on one secret, or on every secret when no name is given. */
  deny(clientId: string, secretName?: string): void
  allow(clientId: string, secretName?: string): void
  stop(): Promise<void>
}

interface SecretVersion {
  readonly id: string
  readonly value: string
  readonly contentType?: string
  readonly created: number
}

interface RegisteredClient {
  readonly clientId: string
  readonly objectId: string
  readonly clientSecret?: string
  readonly certificate?: X509Certificate
}

const KEY_VAULT_RESOURCE = 'https://vault.azure.net'
const TOKEN_LIFETIME_SECONDS = 3599
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

export async function startAzureKeyVaultFake(options: {
  tls: { certPem: string; keyPem: string }
  tenantId: string
  clients: AzureFakeClient[]
  /** Shown in 403 messages the way Key Vault names itself; defaults to "desklink-test". */
  vaultName?: string
}): Promise<AzureKeyVaultFake> {
  const { tenantId } = options
  const vaultName = options.vaultName ?? 'desklink-test'
  const clients = new Map<string, RegisteredClient>()
  const secrets = new Map<string, SecretVersion[]>()
  const denied = new Set<string>()
  const requests: AzureKeyVaultFakeRequest[] = []
  const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = randomBytes(16).toString('base64url')
  let baseUrl = ''

  const addClient = (client: AzureFakeClient) => {
    clients.set(client.clientId, {
      clientId: client.clientId,
      objectId: randomUUID(),
      ...(client.clientSecret !== undefined ? { clientSecret: client.clientSecret } : {}),
      ...(client.certificatePem ? { certificate: new X509Certificate(client.certificatePem) } : {}),
    })
  }
  options.clients.forEach(addClient)

  const tokenEndpoint = () => `${baseUrl}/${tenantId}/oauth2/v2.0/token`

  const openIdConfiguration = () => ({
    token_endpoint: tokenEndpoint(),
    token_endpoint_auth_methods_supported: [
      'client_secret_post',
      'private_key_jwt',
      'client_secret_basic',
    ],
    jwks_uri: `${baseUrl}/${tenantId}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['ES256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${baseUrl}/${tenantId}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${baseUrl}/oidc/userinfo`,
    authorization_endpoint: `${baseUrl}/${tenantId}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${baseUrl}/${tenantId}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${baseUrl}/${tenantId}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'tid', 'oid', 'appid'],
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  })

  const entraError = (
    res: ServerResponse,
    status: number,
    error: string,
    code: number,
    description: string,
  ) => {
    const traceId = randomUUID()
    const correlationId = randomUUID()
    const timestamp = new Date()
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z')
    sendJson(res, status, {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${baseUrl}/error?code=${code}`,
    })
  }

  const token = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req))
    const grantType = form.get('grant_type') ?? undefined
    const basic = basicCredentials(req)
    const clientId = form.get('client_id') ?? basic?.clientId ?? undefined
    requests.push({
      method: 'POST',
      path: `/${tenantId}/oauth2/v2.0/token`,
      query: {},
      authorization: basic !== undefined,
      ...(clientId !== undefined ? { clientId } : {}),
      ...(grantType !== undefined ? { grantType } : {}),
    })
    if (grantType !== 'client_credentials') {
      return entraError(
        res,
        400,
        'unsupported_grant_type',
        70003,
        `The app requested an unsupported grant type '${grantType ?? ''}'.`,
      )
    }
    if (!clientId) {
      return entraError(
        res,
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'client_id'.",
      )
    }
    const client = clients.get(clientId)
    if (!client) {
      return entraError(
        res,
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      )
    }
    const secret = form.get('client_secret') ?? basic?.clientSecret
    const assertion = form.get('client_assertion')
    if (assertion !== null) {
      if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
        return entraError(
          res,
          400,
          'invalid_request',
          7000216,
          "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
      }
      const problem = checkAssertion(assertion, client, tokenEndpoint())
      if (problem) return entraError(res, 401, 'invalid_client', problem.code, problem.message)
    } else if (secret !== undefined && secret !== null) {
      if (client.clientSecret === undefined || secret !== client.clientSecret) {
        return entraError(res, 401, 'invalid_client', 7000215, 'Invalid client secret provided.')
      }
    } else {
      return entraError(
        res,
        400,
        'invalid_client',
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      )
    }
    const scope = form.get('scope') ?? ''
    const scopes = scope.split(' ').filter(Boolean)
    if (scopes.length !== 1 || !scopes[0].endsWith('/.default')) {
      return entraError(
        res,
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      )
    }
    const now = Math.floor(Date.now() / 1000)
    const accessToken = signJwt(signing.privateKey, kid, {
      aud: scopes[0].slice(0, -'/.default'.length),
      iss: `https://sts.windows.net/${tenantId}/`,
      iat: now,
      nbf: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
      appid: client.clientId,
      appidacr: assertion !== null ? '2' : '1',
      idp: `https://sts.windows.net/${tenantId}/`,
      oid: client.objectId,
      sub: client.objectId,
      tid: tenantId,
      uti: randomBytes(16).toString('base64url'),
      ver: '1.0',
    })
    return sendJson(
      res,
      200,
      {
        token_type: 'Bearer',
        expires_in: TOKEN_LIFETIME_SECONDS,
        ext_expires_in: TOKEN_LIFETIME_SECONDS,
        access_token: accessToken,
      },
      { pragma: 'no-cache' },
    )
  }

  const challenge = (error?: string) =>
    `Bearer authorization="${baseUrl}/${tenantId}", resource="${KEY_VAULT_RESOURCE}"` +
    (error ? `, error="${error}"` : '')

  const vaultError = (
    res: ServerResponse,
    status: number,
    error: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => sendJson(res, status, { error }, { 'x-ms-request-id': randomUUID(), ...headers })

  const readSecret = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const authorization = req.headers.authorization
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1]
    const claims = bearer === undefined ? undefined : verifyJwt(signing.publicKey, bearer)
    const valid =
      claims !== undefined &&
      claims.tid === tenantId &&
      typeof claims.exp === 'number' &&
      claims.exp > Date.now() / 1000 &&
      String(claims.aud).replace(/\/$/, '') === KEY_VAULT_RESOURCE &&
      typeof claims.appid === 'string' &&
      clients.has(claims.appid)
    const clientId = valid ? (claims.appid as string) : undefined
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryObject(url),
      authorization: authorization !== undefined,
      ...(clientId !== undefined ? { clientId } : {}),
    })

    if (authorization === undefined) {
      return vaultError(
        res,
        401,
        { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
        { 'www-authenticate': challenge() },
      )
    }
    if (!clientId) {
      return vaultError(
        res,
        401,
        {
          code: 'Unauthorized',
          message: 'AKV10032: Invalid issuer or token. The token is not valid for this vault.',
        },
        { 'www-authenticate': challenge('invalid_token') },
      )
    }
    if (!url.searchParams.get('api-version')) {
      return vaultError(res, 400, {
        code: 'BadParameter',
        message: 'The api-version query parameter is missing or empty.',
      })
    }
    const match = /^\/secrets\/([0-9A-Za-z-]{1,127})(?:\/([0-9a-f]{32})?)?\/?$/.exec(url.pathname)
    if (!match) {
      return vaultError(res, 400, {
        code: 'BadParameter',
        message: 'The request URI is not valid.',
      })
    }
    if (req.method !== 'GET') {
      return vaultError(res, 405, {
        code: 'MethodNotAllowed',
        message: `The requested resource does not support http method '${req.method ?? ''}'.`,
      })
    }
    const name = match[1]
    const versionId = match[2]
    if (denied.has(`${clientId}\u0000*`) || denied.has(`${clientId}\u0000${name}`)) {
      const client = clients.get(clientId)!
      return vaultError(res, 403, {
        code: 'Forbidden',
        message: `The user, group or application 'appid=${clientId};oid=${client.objectId};iss=https://sts.windows.net/${tenantId}/' does not have secrets get permission on key vault '${vaultName};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
        innererror: { code: 'AccessDenied' },
      })
    }
    const versions = secrets.get(name)
    const version = versionId
      ? versions?.find((candidate) => candidate.id === versionId)
      : versions?.at(-1)
    if (!version) {
      return vaultError(res, 404, {
        code: 'SecretNotFound',
        message: `A secret with (name/id) ${versionId ? `${name}/${versionId}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      })
    }
    return sendJson(
      res,
      200,
      {
        value: version.value,
        ...(version.contentType !== undefined ? { contentType: version.contentType } : {}),
        id: `${baseUrl}/secrets/${name}/${version.id}`,
        attributes: {
          enabled: true,
          created: version.created,
          updated: version.created,
          recoveryLevel: 'Recoverable+Purgeable',
          recoverableDays: 90,
        },
        tags: {},
      },
      { 'x-ms-request-id': randomUUID(), 'x-ms-keyvault-service-version': '1.9.0.0' },
    )
  }

  const running = await listenHttps(
    { cert: options.tls.certPem, key: options.tls.keyPem },
    async (req, res, url) => {
      const path = url.pathname
      if (path.startsWith('/secrets/')) return readSecret(req, res, url)

      const tenantRoute = /^\/([^/]+)\/(.+)$/.exec(path)
      if (!tenantRoute) return sendJson(res, 404, { error: 'not_found' })
      const [, tenant, rest] = tenantRoute
      if (tenant !== tenantId) {
        return entraError(
          res,
          400,
          'invalid_tenant',
          90002,
          `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
        )
      }
      if (rest === 'oauth2/v2.0/token' && req.method === 'POST') return token(req, res)

      requests.push({
        method: req.method ?? 'GET',
        path,
        query: queryObject(url),
        authorization: req.headers.authorization !== undefined,
      })
      if (rest === 'v2.0/.well-known/openid-configuration') {
        return sendJson(res, 200, openIdConfiguration())
      }
      if (rest === 'discovery/v2.0/keys') {
        const jwk: JsonWebKey = signing.publicKey.export({ format: 'jwk' })
        return sendJson(res, 200, { keys: [{ ...jwk, kid, use: 'sig', alg: 'ES256' }] })
      }
      return sendJson(res, 404, { error: 'not_found' })
    },
  )
  baseUrl = running.url

  return {
    url: running.url,
    tenantId,
    resource: KEY_VAULT_RESOURCE,
    requests,
    addClient,
    setSecret(name, value, secretOptions = {}) {
      const id = randomBytes(16).toString('hex')
      const versions = secrets.get(name) ?? []
      secrets.set(name, versions)
      versions.push({
        id,
        value,
        created: Math.floor(Date.now() / 1000),
        ...(secretOptions.contentType !== undefined
          ? { contentType: secretOptions.contentType }
          : {}),
      })
      return id
    },
    deny(clientId, secretName) {
      denied.add(`${clientId}\u0000${secretName ?? '*'}`)
    },
    allow(clientId, secretName) {
      denied.delete(`${clientId}\u0000${secretName ?? '*'}`)
    },
    stop: () => running.stop(),
  }
}

function basicCredentials(
  req: IncomingMessage,
): { clientId: string; clientSecret: string } | undefined {
  const encoded = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
  if (!encoded) return undefined
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return {
    clientId: decodeURIComponent(decoded.slice(0, colon)),
    clientSecret: decodeURIComponent(decoded.slice(colon + 1)),
  }
}

// Entra's private_key_jwt rules as MSAL exercises them: the x5t#S256 (or legacy x5t) header
// names a certificate registered on the app, the signature verifies with its key (PS256 or
// RS256), iss and sub are the client id, aud is the token endpoint, and the time window holds.
function checkAssertion(
  assertion: string,
  client: RegisteredClient,
  audience: string,
): { code: number; message: string } | undefined {
  const parts = assertion.split('.')
  const [headerPart, payloadPart, signaturePart] = parts
  const header = parts.length === 3 ? parseJson(headerPart) : undefined
  const payload = parts.length === 3 ? parseJson(payloadPart) : undefined
  if (!header || !payload) {
    return { code: 50027, message: 'JWT token is invalid or malformed.' }
  }
  const certificate = client.certificate
  const der = certificate?.raw
  const registered =
    der !== undefined &&
    (header['x5t#S256'] === createHash('sha256').update(der).digest('base64url') ||
      header.x5t === createHash('sha1').update(der).digest('base64url'))
  if (!certificate || !registered) {
    return {
      code: 700027,
      message: `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${client.clientId}'.]`,
    }
  }
  const signed = Buffer.from(`${headerPart}.${payloadPart}`)
  const signature = Buffer.from(signaturePart, 'base64url')
  const key = certificate.publicKey
  const valid =
    header.alg === 'PS256'
      ? verify('sha256', signed, pss(key), signature)
      : header.alg === 'RS256'
        ? verify('sha256', signed, key, signature)
        : false
  if (!valid) return { code: 700027, message: 'Client assertion failed signature validation.' }
  if (payload.iss !== client.clientId || payload.sub !== client.clientId) {
    return {
      code: 700021,
      message: 'Client assertion application identifier does not match the client_id parameter.',
    }
  }
  if (payload.aud !== audience) {
    return {
      code: 700212,
      message: `No matching federated identity record found for presented assertion audience '${String(payload.aud)}'.`,
    }
  }
  const now = Math.floor(Date.now() / 1000)
  const skew = 300
  if (
    typeof payload.exp !== 'number' ||
    payload.exp < now - skew ||
    (typeof payload.nbf === 'number' && payload.nbf > now + skew)
  ) {
    return { code: 700024, message: 'Client assertion is not within its valid time range.' }
  }
  return undefined
}

function pss(key: KeyObject) {
  return {
    key,
    padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
    saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST,
  }
}

function signJwt(key: KeyObject, kid: string, payload: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid })).toString(
    'base64url',
  )
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
  const signature = sign('sha256', Buffer.from(`${header}.${body}`), {
    key,
    dsaEncoding: 'ieee-p1363',
  })
  return `${header}.${body}.${signature.toString('base64url')}`
}

function verifyJwt(key: KeyObject, token: string): Record<string, unknown> | undefined {
  const [header, body, signature] = token.split('.')
  if (!header || !body || !signature) return undefined
  const ok = verify(
    'sha256',
    Buffer.from(`${header}.${body}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  )
  return ok ? parseJson(body) : undefined
}

function parseJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
