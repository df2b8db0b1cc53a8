/**
 * HashiCorp Vault, KV secrets engine version 2, over its HTTP API: token or AppRole login
 * (`POST /v1/auth/<mount>/login`), then `GET /v1/<mount>/data/<path>?version=<n>`. An AppRole
 * login happens for each read and its token is not kept.
 *
 * @module
 */
import type { SecretStoreSettings } from '@desklink/protocol'

import { AppError } from '../../errors/index.ts'
import { httpsJson, unreachable } from '../https-json.ts'
import {
  type ExternalReference,
  readDeniedMessage,
  type SecretStoreBackend,
} from './secret-store-backend.ts'

type VaultSettings = Extract<SecretStoreSettings, { type: 'hashicorpVault' }>
type VaultReference = Extract<ExternalReference, { store: 'hashicorpVault' }>

const encodePath = (path: string) =>
  path.split('/').filter(Boolean).map(encodeURIComponent).join('/')

async function login(settings: VaultSettings): Promise<string> {
  if (settings.auth.method === 'token') return settings.auth.token
  const url = `${settings.address.replace(/\/$/, '')}/v1/auth/${encodePath(settings.auth.mount)}/login`
  const response = await httpsJson(url, {
    method: 'POST',
    body: { role_id: settings.auth.roleId, secret_id: settings.auth.secretId },
    headers: settings.namespace ? { 'x-vault-namespace': settings.namespace } : {},
    caPem: settings.caCertificate,
  })
  const token = (response.body as { auth?: { client_token?: unknown } } | undefined)?.auth
    ?.client_token
  if (response.status === 200 && typeof token === 'string') return token
  if (response.status === 400 || response.status === 403) {
    throw new AppError('SecretReadDenied', {
      message: 'Vault refused the AppRole login of this store.',
      details: { status: response.status },
    })
  }
  throw unreachable(url, undefined, response.status)
}

export const hashicorpVaultBackend: SecretStoreBackend<VaultSettings, VaultReference> = {
  describe: (ref) => `${ref.mount}/${ref.path}#${ref.key}${ref.version ? `@${ref.version}` : ''}`,
  async read(settings, ref) {
    const token = await login(settings)
    const url =
      `${settings.address.replace(/\/$/, '')}/v1/${encodePath(ref.mount)}/data/${encodePath(ref.path)}` +
      (ref.version ? `?version=${ref.version}` : '')
    const response = await httpsJson(url, {
      headers: {
        'x-vault-token': token,
        ...(settings.namespace && { 'x-vault-namespace': settings.namespace }),
      },
      caPem: settings.caCertificate,
    })
    if (response.status === 403)
      throw new AppError('SecretReadDenied', {
        message: readDeniedMessage(`${ref.mount}/${ref.path}`),
      })
    if (response.status === 404)
      throw new AppError('SecretNotFound', { details: { path: this.describe(ref) } })
    if (response.status !== 200) throw unreachable(url, undefined, response.status)
    const value = (response.body as { data?: { data?: Record<string, unknown> } } | undefined)?.data
      ?.data?.[ref.key]
    if (typeof value !== 'string')
      throw new AppError('SecretNotFound', { details: { path: this.describe(ref) } })
    return value
  },
}
