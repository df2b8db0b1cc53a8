/**
 * First-party public clients (RFC 8252): they hold no secret and must use PKCE S256. Service
 * principals are the confidential clients; they are looked up in the database instead.
 *
 * @module
 */

export interface PublicClient {
  readonly id: string
  readonly grants: readonly string[]
  /** Scopes the client may request; `offline_access` yields a refresh token. */
  readonly scopes: readonly string[]
  readonly allowsRedirect: (uri: string) => boolean
}

/**
 * Native apps receive the code on a loopback redirect with any port (RFC 8252 §7.3). Only the
 * loopback literal addresses and `localhost` are taken, over plain http, with no query part.
 */
export function isLoopbackRedirect(uri: string): boolean {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return false
  }
  return (
    url.protocol === 'http:' &&
    ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) &&
    url.username === '' &&
    url.password === '' &&
    url.hash === ''
  )
}

export const PUBLIC_CLIENTS: Readonly<Record<string, PublicClient>> = Object.freeze({
  'desklink-cli': {
    id: 'desklink-cli',
    grants: ['authorization_code', 'refresh_token'],
    scopes: ['api', 'offline_access', 'desktopflows.execute'],
    allowsRedirect: isLoopbackRedirect,
  },
})

export function findPublicClient(clientId: string): PublicClient | undefined {
  return Object.hasOwn(PUBLIC_CLIENTS, clientId) ? PUBLIC_CLIENTS[clientId] : undefined
}

/** Scopes a service principal may request with client credentials. */
export const SERVICE_PRINCIPAL_SCOPES: readonly string[] = ['api']
