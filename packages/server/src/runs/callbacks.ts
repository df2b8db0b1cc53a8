/**
 * Run-ended callbacks: an HTTPS POST of the run to the caller's `callbackUrl`, tried three
 * times one second apart when the answer is 5xx or 408 or nothing came back. Delivery never
 * holds up the run; its outcome is a run event. Targets inside an organisation often use a
 * private CA: `DESKLINK_CALLBACK_CA_FILE` adds it to the trusted ones.
 *
 * @module
 */
import { request } from 'node:https'

import type { Logger } from '../logging/index.ts'

export const CALLBACK_TRIES = 3
const RETRY_DELAY_MS = 1000
const TIMEOUT_MS = 10_000

const retryable = (status: number) => status >= 500 || status === 408

/** One POST; resolves with the status code. Redirects are not followed. */
function post(url: string, payload: string, caPem: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        ...(caPem && { ca: caPem }),
        timeout: TIMEOUT_MS,
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(payload)
  })
}

export async function deliverCallback(
  url: string,
  body: unknown,
  options: { logger: Logger; caPem?: string | undefined; delayMs?: number },
): Promise<{ delivered: boolean; tries: number; lastStatus: number | null }> {
  const payload = JSON.stringify(body)
  let lastStatus: number | null = null
  for (let attempt = 1; attempt <= CALLBACK_TRIES; attempt++) {
    try {
      lastStatus = await post(url, payload, options.caPem)
      if (!retryable(lastStatus))
        return { delivered: lastStatus >= 200 && lastStatus < 300, tries: attempt, lastStatus }
    } catch (error) {
      options.logger.warn({ err: (error as Error).message, attempt }, 'run callback failed')
    }
    if (attempt < CALLBACK_TRIES)
      await new Promise((r) => setTimeout(r, options.delayMs ?? RETRY_DELAY_MS))
  }
  return { delivered: false, tries: CALLBACK_TRIES, lastStatus }
}
