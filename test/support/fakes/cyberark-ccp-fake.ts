/**
 * CyberArk Central Credential Provider (the AIMWebService REST endpoint) over mutual TLS: a
 * client without a certificate from the given CA fails the handshake, and an application is
 * authenticated by its client certificate's serial number or subject CN. Replies use CCP's
 * field names and its documented error codes:
 *   400 AIMWS031E  no AppID             400 AIMWS030E  no search criteria
 *   400 APPAP227E  several objects match 400 APPAP007E  the Vault is unreachable (setDown)
 *   403 APPAP008E  unknown AppID        403 APPAP306E  the certificate does not authenticate it
 *   404 APPAP004E  no matching object, or the app has no access to its safe
 *   500 APPAP282E  password change in process and FailRequestOnPasswordChange=true
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'

import { listenHttps, queryObject, sendJson } from './https-fake-server.ts'
import { normalizeSerial } from './test-ca.ts'

export interface CcpAccount {
  userName: string
  content: string
  address?: string
  database?: string
  port?: string
  policyId?: string
  deviceType?: string
  logonDomain?: string
}

/** Which client certificates authenticate an AppID: by serial number (hex) or subject CN. */
export type CcpApplicationMatch = { serial: string } | { commonName: string }

export interface CcpFakeRequest {
  readonly method: string
  readonly path: string
  readonly query: Record<string, string>
  readonly clientCertificate: { serial: string; commonName?: string }
}

export interface CcpFake {
  /** https://127.0.0.1:<port>; the API lives under /AIMWebService/api/Accounts. */
  readonly url: string
  readonly requests: CcpFakeRequest[]
  /** TLS handshakes the server refused (no certificate, or one from another CA). */
  readonly rejectedHandshakes: number
  /** Adds a certificate that authenticates appId; `safes` limits the safes it may read. */
  allowApplication(appId: string, match: CcpApplicationMatch, options?: { safes?: string[] }): void
  /** Creates or replaces an account; replacing its content is how a rotation looks. */
  setAccount(safe: string, folder: string, object: string, account: CcpAccount): void
  removeAccount(safe: string, folder: string, object: string): void
  setPasswordChangeInProcess(safe: string, folder: string, object: string, value: boolean): void
  setDown(down: boolean): void
  stop(): Promise<void>
}

interface StoredAccount extends CcpAccount {
  readonly safe: string
  readonly folder: string
  readonly object: string
  changeInProcess: boolean
}

interface Application {
  readonly matches: CcpApplicationMatch[]
  safes?: Set<string>
}

const ACCOUNTS_PATH = '/aimwebservice/api/accounts'
const CRITERIA = ['Safe', 'Folder', 'Object', 'UserName', 'Address'] as const

export async function startCyberArkCcpFake(options: {
  tls: { certPem: string; keyPem: string }
  caPem: string
}): Promise<CcpFake> {
  const accounts = new Map<string, StoredAccount>()
  const applications = new Map<string, Application>()
  const requests: CcpFakeRequest[] = []
  let rejectedHandshakes = 0
  let down = false

  const fail = (res: ServerResponse, status: number, code: string, message: string) =>
    sendJson(res, status, { ErrorCode: code, ErrorMsg: message })

  const handle = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    const commonName = firstValue(peer.subject?.CN)
    const presented = {
      serial: normalizeSerial(peer.serialNumber ?? ''),
      ...(commonName !== undefined ? { commonName } : {}),
    }
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryObject(url),
      clientCertificate: presented,
    })
    if (url.pathname.toLowerCase().replace(/\/$/, '') !== ACCOUNTS_PATH) {
      res
        .writeHead(404, { 'content-type': 'text/html' })
        .end('<h1>404 - File or directory not found.</h1>')
      return
    }
    if (req.method !== 'GET') {
      return fail(
        res,
        405,
        'AIMWS001E',
        `The requested resource does not support http method '${req.method ?? ''}'.`,
      )
    }
    const param = (name: string): string | undefined => {
      for (const [key, value] of url.searchParams) {
        if (key.toLowerCase() === name.toLowerCase() && value !== '') return value
      }
      return undefined
    }

    const appId = param('AppID')
    if (!appId)
      return fail(res, 400, 'AIMWS031E', 'Invalid request. The AppID parameter is required.')
    if (down) {
      return fail(res, 400, 'APPAP007E', 'Connection to the Vault has failed. (Diagnostic Info: 1)')
    }
    const application = applications.get(appId.toLowerCase())
    if (!application) {
      return fail(
        res,
        403,
        'APPAP008E',
        `Problem occurred while trying to use user [${appId}] from the Vault (Diagnostic Info: 31). Please check that the application is defined in the Vault (ITATS982E User ${appId} is not defined.)`,
      )
    }
    const authenticated = application.matches.some((match) =>
      'serial' in match
        ? normalizeSerial(match.serial) === presented.serial
        : match.commonName === presented.commonName,
    )
    if (!authenticated) {
      return fail(
        res,
        403,
        'APPAP306E',
        `Failed to authenticate application [AppID=${appId}]: App failed on authentication check (client certificate serial number [${presented.serial}], subject CN [${presented.commonName ?? ''}]).`,
      )
    }

    const criteria = searchCriteria(param)
    if (Object.keys(criteria).length === 0) {
      return fail(res, 400, 'AIMWS030E', 'Invalid query format: no search criteria were given.')
    }
    criteria.Folder ??= 'Root'
    const queryText = CRITERIA.filter((key) => criteria[key] !== undefined)
      .map((key) => `${key}=${criteria[key]}`)
      .join(';')
    const found = [...accounts.values()].filter(
      (account) =>
        (!application.safes || application.safes.has(account.safe.toLowerCase())) &&
        same(criteria.Safe, account.safe) &&
        same(criteria.Folder, account.folder) &&
        same(criteria.Object, account.object) &&
        same(criteria.UserName, account.userName) &&
        same(criteria.Address, account.address),
    )
    if (found.length === 0) {
      return fail(
        res,
        404,
        'APPAP004E',
        `Password object matching query [${queryText}] was not found (Diagnostic Info: 5). Please check that there is a password object that answers your query in the Vault and that both the Provider and the application user have the appropriate permissions needed in order to use the password.`,
      )
    }
    if (found.length > 1) {
      return fail(
        res,
        400,
        'APPAP227E',
        `Too many password objects matching query [${queryText}] were found (Diagnostic Info: 4).`,
      )
    }
    const account = found[0]
    if (account.changeInProcess && param('FailRequestOnPasswordChange')?.toLowerCase() === 'true') {
      return fail(
        res,
        500,
        'APPAP282E',
        `Password [${account.object}] is currently being changed by the CPM.`,
      )
    }
    return sendJson(res, 200, {
      Content: account.content,
      CreationMethod: 'PVWA',
      ...(account.address !== undefined ? { Address: account.address } : {}),
      ...(account.database !== undefined ? { Database: account.database } : {}),
      ...(account.port !== undefined ? { Port: account.port } : {}),
      ...(account.logonDomain !== undefined ? { LogonDomain: account.logonDomain } : {}),
      Safe: account.safe,
      Folder: account.folder,
      Name: account.object,
      UserName: account.userName,
      PolicyID: account.policyId ?? 'WinDomain',
      DeviceType: account.deviceType ?? 'Operating System',
      PasswordChangeInProcess: account.changeInProcess ? 'True' : 'False',
    })
  }

  const running = await listenHttps(
    {
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      ca: options.caPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    handle,
  )
  running.server.on('tlsClientError', () => {
    rejectedHandshakes += 1
  })

  const key = (safe: string, folder: string, object: string) =>
    [safe, folder, object].map((part) => part.toLowerCase()).join('\u0000')

  return {
    url: running.url,
    requests,
    get rejectedHandshakes() {
      return rejectedHandshakes
    },
    allowApplication(appId, match, allowOptions = {}) {
      const application = applications.get(appId.toLowerCase()) ?? { matches: [] }
      application.matches.push(match)
      if (allowOptions.safes) {
        application.safes = new Set(allowOptions.safes.map((safe) => safe.toLowerCase()))
      }
      applications.set(appId.toLowerCase(), application)
    },
    setAccount(safe, folder, object, account) {
      const previous = accounts.get(key(safe, folder, object))
      accounts.set(key(safe, folder, object), {
        ...account,
        safe,
        folder,
        object,
        changeInProcess: previous?.changeInProcess ?? false,
      })
    },
    removeAccount(safe, folder, object) {
      accounts.delete(key(safe, folder, object))
    },
    setPasswordChangeInProcess(safe, folder, object, value) {
      const account = accounts.get(key(safe, folder, object))
      if (!account) throw new Error(`no account ${safe}/${folder}/${object}`)
      account.changeInProcess = value
    },
    setDown(value) {
      down = value
    },
    stop: () => running.stop(),
  }
}

// CCP takes either the individual parameters or a Query of the form "Safe=x;Folder=y;Object=z",
// which then overrides them.
function searchCriteria(
  param: (name: string) => string | undefined,
): Partial<Record<(typeof CRITERIA)[number], string>> {
  const criteria: Partial<Record<(typeof CRITERIA)[number], string>> = {}
  const query = param('Query')
  const read = (name: string): string | undefined => {
    if (query === undefined) return param(name)
    for (const pair of query.split(';')) {
      const at = pair.indexOf('=')
      if (at > 0 && pair.slice(0, at).trim().toLowerCase() === name.toLowerCase()) {
        return pair.slice(at + 1).trim()
      }
    }
    return undefined
  }
  for (const name of CRITERIA) {
    const value = read(name)
    if (value !== undefined && value !== '') criteria[name] = value
  }
  return criteria
}

function same(wanted: string | undefined, actual: string | undefined): boolean {
  return wanted === undefined || wanted.toLowerCase() === (actual ?? '').toLowerCase()
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
