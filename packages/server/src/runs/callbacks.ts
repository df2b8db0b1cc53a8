/**
 * Run-ended callbacks: an HTTPS POST of the run to the caller's `callbackUrl`, tried three
 * times one second apart when the answer is 5xx or 408 or nothing came back. Delivery never
 * holds up the run; its outcome is a run event.
 *
 * @module
 */
import type { Logger } from '../logging/index.ts'

export const CALLBACK_TRIES = 3
const RETRY_DELAY_MS = 1000
const TIMEOUT_MS = 10_000

const retryable = (status: number) => status >= 500 || status === 408

export async function deliverCallback(
  url: string,
  body: unknown,
  logger: Logger,
  delayMs = RETRY_DELAY_MS,
): Promise<{ delivered: boolean; tries: number; lastStatus: number | null }> {
  let lastStatus: number | null = null
  for (let attempt = 1; attempt <= CALLBACK_TRIES; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      lastStatus = response.status
      await response.body?.cancel()
      if (!retryable(response.status)) return { delivered: response.ok, tries: attempt, lastStatus }
    } catch (error) {
      logger.warn({ err: (error as Error).message, attempt }, 'run callback failed')
    }
    if (attempt < CALLBACK_TRIES) await new Promise((r) => setTimeout(r, delayMs))
  }
  return { delivered: false, tries: CALLBACK_TRIES, lastStatus }
}
