/**
 * The machine's own call to CyberArk's Central Credential Provider (AIMWebService REST) with
 * the application's client certificate: mutual TLS, no cache. The certificate arrives sealed
 * to the group key and is opened only in memory for this call.
 *
 * @module
 */
import { request } from 'node:https'

import { AgentError } from '../agent-error.ts'

export interface CcpRequest {
  readonly url: string
  readonly appId: string
  readonly safe: string
  readonly folder: string
  readonly object: string
  readonly caCertificate?: string
}

export interface CcpAccount {
  readonly userName: string
  readonly content: string
}

export function fetchFromCyberArk(
  ccp: CcpRequest,
  clientCertificatePem: string,
  timeoutMs = 10_000,
): Promise<CcpAccount> {
  const query = new URLSearchParams({
    AppID: ccp.appId,
    Safe: ccp.safe,
    Folder: ccp.folder,
    Object: ccp.object,
  })
  const url = `${ccp.url.replace(/\/$/, '')}/AIMWebService/api/Accounts?${query.toString()}`
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        cert: clientCertificatePem,
        key: clientCertificatePem,
        ...(ccp.caCertificate && { ca: ccp.caCertificate }),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          let body: Record<string, unknown> = {}
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
          } catch {
            // Not JSON: judged by the status alone.
          }
          const status = res.statusCode ?? 0
          const errorCode = typeof body.ErrorCode === 'string' ? body.ErrorCode : undefined
          if (status === 200 && typeof body.Content === 'string') {
            resolve({
              userName: typeof body.UserName === 'string' ? body.UserName : '',
              content: body.Content,
            })
          } else if (status === 404) {
            reject(
              new AgentError('SecretNotFound', {
                message: `CyberArk has no account '${ccp.object}' in safe '${ccp.safe}'.`,
                details: { errorCode },
              }),
            )
          } else if (status === 401 || status === 403) {
            reject(
              new AgentError('SecretReadDenied', {
                message: `CyberArk refused application '${ccp.appId}'.`,
                details: { errorCode },
              }),
            )
          } else {
            reject(
              new AgentError('SecretStoreUnreachable', {
                message: `CyberArk CCP answered HTTP ${status}.`,
                details: { errorCode },
              }),
            )
          }
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (error) =>
      reject(
        new AgentError('SecretStoreUnreachable', {
          message: `CyberArk CCP could not be reached: ${(error as NodeJS.ErrnoException).code ?? error.message}`,
        }),
      ),
    )
    req.end()
  })
}
