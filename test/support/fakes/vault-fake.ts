/**
 * HashiCorp Vault over HTTPS, the subset Desklink's Vault client speaks: AppRole login, token
 * lookup, KV v2 reads (latest or ?version=N) and sys/health, with Vault's own JSON shapes and
 * status codes. Policies are reduced to path prefixes a token may read; "root" reads anything.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

import { listenHttps, queryObject, readBody, sendJson } from './https-fake-server.ts'

export interface VaultFakeRequest {
  readonly method: string
  /** URL path without the query string. */
  readonly path: string
  readonly query: Record<string, string>
  /** Whether the request carried a token (X-Vault-Token or Authorization: Bearer). */
  readonly token: boolean
  readonly namespace?: string
}

export interface VaultAppRole {
  /** Auth mount path; Vault's default for AppRole is "approle". */
  mount?: string
  roleId: string
  secretId: string
  policies: string[]
  roleName?: string
}

export interface VaultFake {
  /** https://127.0.0.1:<port>, the VAULT_ADDR a client would use. */
  readonly url: string
  readonly requests: VaultFakeRequest[]
  /** Grants read on every `<mount>/data/<path>` starting with one of the prefixes. */
  addPolicy(name: string, readablePrefixes: string[]): void
  addToken(token: string, policies: string[]): void
  addAppRole(role: VaultAppRole): void
  revokeToken(token: string): void
  /** Writes a new KV v2 version (the first is 1) and returns its number. */
  putSecret(mount: string, path: string, data: Record<string, string>): number
  /** Sealed: every request, health included, answers 503. */
  setDown(down: boolean): void
  stop(): Promise<void>
}

interface StoredVersion {
  readonly data: Record<string, string>
  readonly createdTime: string
}

interface TokenEntry {
  readonly policies: string[]
  readonly accessor: string
  readonly ttl: number
  readonly issuedAt: number
  /** The auth path that created it, as token lookup reports it. */
  readonly path: string
}

const LOGIN_TTL_SECONDS = 3600

export async function startVaultFake(options: {
  tls: { certPem: string; keyPem: string }
}): Promise<VaultFake> {
  const policies = new Map<string, string[]>()
  const tokens = new Map<string, TokenEntry>()
  const appRoles = new Map<string, Required<VaultAppRole>>()
  const mounts = new Map<string, Map<string, StoredVersion[]>>()
  const requests: VaultFakeRequest[] = []
  let down = false

  const issueToken = (
    tokenPolicies: string[],
    ttl: number,
    path: string,
    token = newToken(),
  ): string => {
    tokens.set(token, {
      policies: [...tokenPolicies],
      accessor: randomBytes(12).toString('base64url'),
      ttl,
      issuedAt: Date.now(),
      path,
    })
    return token
  }

  const canRead = (entry: TokenEntry, apiPath: string): boolean =>
    entry.policies.some(
      (name) =>
        name === 'root' ||
        (policies.get(name) ?? []).some((prefix) => apiPath.startsWith(prefix.replace(/\*$/, ''))),
    )

  const envelope = (fields: Record<string, unknown>): Record<string, unknown> => ({
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: null,
    ...fields,
  })

  const login = async (req: IncomingMessage, res: ServerResponse, mount: string) => {
    if (req.method !== 'POST' && req.method !== 'PUT') {
      return sendJson(res, 405, { errors: [] })
    }
    let body: { role_id?: unknown; secret_id?: unknown }
    try {
      body = JSON.parse((await readBody(req)) || '{}') as typeof body
    } catch (error) {
      return sendJson(res, 400, { errors: [`failed to parse JSON input: ${String(error)}`] })
    }
    if (typeof body.role_id !== 'string' || body.role_id === '') {
      return sendJson(res, 400, { errors: ['missing role_id'] })
    }
    const role = appRoles.get(`${mount}\u0000${body.role_id}`)
    if (!role || body.secret_id !== role.secretId) {
      return sendJson(res, 400, { errors: ['invalid role or secret ID'] })
    }
    const token = issueToken(
      ['default', ...role.policies],
      LOGIN_TTL_SECONDS,
      `auth/${mount}/login`,
    )
    const entry = tokens.get(token)!
    return sendJson(
      res,
      200,
      envelope({
        auth: {
          client_token: token,
          accessor: entry.accessor,
          policies: entry.policies,
          token_policies: entry.policies,
          metadata: { role_name: role.roleName },
          lease_duration: LOGIN_TTL_SECONDS,
          renewable: true,
          entity_id: randomUUID(),
          token_type: 'service',
          orphan: true,
          mfa_requirement: null,
          num_uses: 0,
        },
      }),
    )
  }

  const lookupSelf = (res: ServerResponse, token: string, entry: TokenEntry) => {
    const elapsed = Math.floor((Date.now() - entry.issuedAt) / 1000)
    return sendJson(
      res,
      200,
      envelope({
        data: {
          accessor: entry.accessor,
          creation_time: Math.floor(entry.issuedAt / 1000),
          creation_ttl: entry.ttl,
          display_name: entry.path.split('/')[1] ?? 'token',
          expire_time:
            entry.ttl > 0 ? new Date(entry.issuedAt + entry.ttl * 1000).toISOString() : null,
          explicit_max_ttl: 0,
          id: token,
          meta: null,
          num_uses: 0,
          orphan: true,
          path: entry.path,
          policies: entry.policies,
          renewable: entry.ttl > 0,
          ttl: entry.ttl > 0 ? Math.max(0, entry.ttl - elapsed) : 0,
          type: 'service',
        },
      }),
    )
  }

  const readKv = (res: ServerResponse, apiPath: string, url: URL) => {
    const [mount, secretPath] = splitDataPath(apiPath, [...mounts.keys()])
    const versions = mount === undefined ? undefined : mounts.get(mount)?.get(secretPath)
    if (!versions) return sendJson(res, 404, { errors: [] })
    const wanted = url.searchParams.get('version')
    let number = versions.length
    if (wanted !== null && wanted !== '' && wanted !== '0') {
      if (!/^\d+$/.test(wanted)) {
        return sendJson(res, 400, { errors: [`invalid version: ${wanted}`] })
      }
      number = Number(wanted)
    }
    const version = versions[number - 1]
    if (!version) return sendJson(res, 404, { errors: [] })
    return sendJson(
      res,
      200,
      envelope({
        data: {
          data: { ...version.data },
          metadata: {
            created_time: version.createdTime,
            custom_metadata: null,
            deletion_time: '',
            destroyed: false,
            version: number,
          },
        },
      }),
    )
  }

  const running = await listenHttps(
    { cert: options.tls.certPem, key: options.tls.keyPem },
    async (req, res, url) => {
      const token = tokenOf(req)
      const namespace = header(req, 'x-vault-namespace')
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: queryObject(url),
        token: token !== undefined,
        ...(namespace !== undefined ? { namespace } : {}),
      })
      if (!url.pathname.startsWith('/v1/')) return sendJson(res, 404, { errors: [] })
      const apiPath = url.pathname.slice('/v1/'.length)

      if (apiPath === 'sys/health') {
        return sendJson(res, down ? 503 : 200, {
          initialized: true,
          sealed: down,
          standby: false,
          performance_standby: false,
          replication_performance_mode: 'disabled',
          replication_dr_mode: 'disabled',
          server_time_utc: Math.floor(Date.now() / 1000),
          version: '1.17.2',
          cluster_name: 'vault-cluster-desklink-test',
        })
      }
      if (down) return sendJson(res, 503, { errors: ['Vault is sealed'] })

      const loginMatch = /^auth\/(.+)\/login$/.exec(apiPath)
      if (loginMatch && loginMatch[1] !== 'token') {
        const mount = loginMatch[1]
        if (![...appRoles.values()].some((role) => role.mount === mount)) {
          return sendJson(res, 404, {
            errors: [`no handler for route "${apiPath}". route entry not found.`],
          })
        }
        return login(req, res, mount)
      }

      const entry = token === undefined ? undefined : tokens.get(token)
      if (token === undefined || !entry || isExpired(entry)) {
        return sendJson(res, 403, { errors: ['permission denied'] })
      }
      if (apiPath === 'auth/token/lookup-self') return lookupSelf(res, token, entry)

      if (!/^[^/]+(\/[^/]+)*\/data\/.+/.test(apiPath)) return sendJson(res, 404, { errors: [] })
      if (!canRead(entry, apiPath)) return sendJson(res, 403, { errors: ['permission denied'] })
      if (req.method !== 'GET') return sendJson(res, 405, { errors: [] })
      return readKv(res, apiPath, url)
    },
  )

  return {
    url: running.url,
    requests,
    addPolicy(name, readablePrefixes) {
      policies.set(name, [...readablePrefixes])
    },
    addToken(token, tokenPolicies) {
      issueToken(tokenPolicies, 0, 'auth/token/create', token)
    },
    addAppRole(role) {
      const mount = trimSlashes(role.mount ?? 'approle')
      appRoles.set(`${mount}\u0000${role.roleId}`, {
        mount,
        roleId: role.roleId,
        secretId: role.secretId,
        policies: [...role.policies],
        roleName: role.roleName ?? 'desklink',
      })
    },
    revokeToken(token) {
      tokens.delete(token)
    },
    putSecret(mount, path, data) {
      const key = trimSlashes(mount)
      const secrets = mounts.get(key) ?? new Map<string, StoredVersion[]>()
      mounts.set(key, secrets)
      const versions = secrets.get(trimSlashes(path)) ?? []
      secrets.set(trimSlashes(path), versions)
      versions.push({ data: { ...data }, createdTime: new Date().toISOString() })
      return versions.length
    },
    setDown(value) {
      down = value
    },
    stop: () => running.stop(),
  }
}

function newToken(): string {
  return `hvs.${randomBytes(18).toString('base64url')}`
}

function isExpired(entry: TokenEntry): boolean {
  return entry.ttl > 0 && Date.now() > entry.issuedAt + entry.ttl * 1000
}

function tokenOf(req: IncomingMessage): string | undefined {
  const direct = header(req, 'x-vault-token')
  if (direct) return direct
  const bearer = /^Bearer\s+(.+)$/i.exec(header(req, 'authorization') ?? '')
  return bearer?.[1]
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

// Known mounts win (longest first) so a mount containing "/" splits correctly; otherwise the
// first "/data/" separates mount from path.
function splitDataPath(apiPath: string, known: string[]): [string | undefined, string] {
  for (const mount of known.sort((a, b) => b.length - a.length)) {
    if (apiPath.startsWith(`${mount}/data/`)) return [mount, apiPath.slice(mount.length + 6)]
  }
  const at = apiPath.indexOf('/data/')
  return at < 0 ? [undefined, ''] : [apiPath.slice(0, at), apiPath.slice(at + 6)]
}

function trimSlashes(value: string): string {
  return value.replace(/^\/+|\/+$/g, '')
}
