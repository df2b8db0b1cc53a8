/**
 * One small HTTPS JSON client for the secret-store backends: a private CA when the store uses
 * one, a bounded wait, and network failures turned into `SecretStoreUnreachable`. Response
 * bodies are parsed but never logged: they may hold secrets.
 *
 * @module
 */
import { request } from 'node:https'

import { AppError } from '../errors/index.ts'

export interface JsonResponse {
  readonly status: number
  readonly body: unknown
}

export function httpsJson(
  url: string,
  options: {
    method?: 'GET' | 'POST'
    headers?: Record<string, string>
    body?: unknown
    caPem?: string | undefined
    timeoutMs?: number
  },
): Promise<JsonResponse> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  return new Promise((resolve, reject) => {
    let req: ReturnType<typeof request>
    try {
      req = request(
        url,
        {
          method: options.method ?? 'GET',
          headers: {
            accept: 'application/json',
            ...(payload !== undefined && {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
            }),
            ...options.headers,
          },
          ...(options.caPem && { ca: options.caPem }),
          timeout: options.timeoutMs ?? 10_000,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let body: unknown
            try {
              body = text ? JSON.parse(text) : undefined
            } catch {
              body = undefined
            }
            resolve({ status: res.statusCode ?? 0, body })
          })
          res.on('error', (error) => reject(unreachable(url, error)))
        },
      )
    } catch (error) {
      // A URL node:https cannot take (a bad address) is the store's problem, not a crash.
      reject(unreachable(url, error))
      return
    }
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (error) => reject(unreachable(url, error)))
    req.end(payload)
  })
}

export function unreachable(url: string, cause: unknown, status?: number): AppError {
  const origin = (() => {
    try {
      return new URL(url).origin
    } catch {
      return 'the store'
    }
  })()
  return new AppError('SecretStoreUnreachable', {
    details: {
      store: origin,
      ...(status !== undefined && { status }),
      ...(cause instanceof Error && {
        reason: (cause as NodeJS.ErrnoException).code ?? cause.message,
      }),
    },
    cause,
  })
}
