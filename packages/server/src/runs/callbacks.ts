/**
 * Run-ended callbacks: an HTTPS POST of the run to the caller's `callbackUrl`, tried three
 * times one second apart when the answer is 5xx or 408 or nothing came back. Delivery never
 * holds up the run; its outcome is a run event. Targets inside an organisation often use a
 * private CA: `DESKLINK_CALLBACK_CA_FILE` adds it to the trusted ones.
 *
 * A callback URL comes from any caller, so the server does not call into its own network for
 * it: addresses that are loopback, private, link-local or otherwise internal are refused unless
 * `DESKLINK_CALLBACK_ALLOWED_HOSTS` names the host or address. The address checked is the one
 * connected to (no second lookup a DNS answer could change).
 *
 * @module
 */
import { lookup } from 'node:dns/promises'
import { request } from 'node:https'
import { BlockList, isIP } from 'node:net'
import { rootCertificates } from 'node:tls'

import type { Logger } from '../logging/index.ts'

export const CALLBACK_TRIES = 3
const RETRY_DELAY_MS = 1000
/** Silence on the socket for this long ends a try. */
const TIMEOUT_MS = 10_000
/** A try ends after this long in all: a target that trickles its answer holds no socket open. */
const TRY_MS = 15_000

const retryable = (status: number) => status >= 500 || status === 408

const INTERNAL = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv6')

function internal(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]
  if (mapped) return INTERNAL.check(mapped, 'ipv4')
  return INTERNAL.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')
}

/** The URL's host, an IPv6 address without its brackets. */
const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, '')

/**
 * Why a callback URL is refused when a run is requested, if it is: a bare IP address (the
 * reference asks for a DNS name), unless `DESKLINK_CALLBACK_ALLOWED_HOSTS` names it. A name
 * that resolves to an internal address is refused when the callback is made, where the address
 * is known (`target`).
 */
export function callbackUrlProblem(url: string, allowed: readonly string[]): string | undefined {
  const host = hostOf(url)
  if (isIP(host) && !allowed.includes(host))
    return `The callback URL must name its host by a DNS name, not an IP address (${host}); an internal address may be allowed with DESKLINK_CALLBACK_ALLOWED_HOSTS.`
  return undefined
}

/** The address to connect to, or why not. */
async function target(
  url: string,
  allowed: readonly string[],
): Promise<{ address: string; family: number } | { refused: string }> {
  const host = hostOf(url)
  const { address, family } = isIP(host)
    ? { address: host, family: isIP(host) }
    : await lookup(host)
  if (internal(address) && !allowed.includes(host) && !allowed.includes(address))
    return { refused: `${host} is an internal address (${address})` }
  return { address, family }
}

/** One POST; resolves with the status code. Redirects are not followed. */
function post(
  url: string,
  payload: string,
  caPem: string | undefined,
  to: { address: string; family: number },
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        // Connect to the address that was checked. Node asks for every address (`all`) when it
        // tries address families in turn, which it does by default for a host name.
        lookup: (_host, options, done) => {
          if (options.all) done(null, [{ address: to.address, family: to.family }])
          else done(null, to.address, to.family)
        },
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        // A private CA is trusted besides the usual ones, not instead of them.
        ...(caPem && { ca: [...rootCertificates, caPem] }),
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
    const whole = setTimeout(() => req.destroy(new Error('took too long')), TRY_MS)
    req.on('close', () => clearTimeout(whole))
    req.end(payload)
  })
}

export async function deliverCallback(
  url: string,
  body: unknown,
  options: {
    logger: Logger
    caPem?: string | undefined
    allowedHosts?: readonly string[]
    delayMs?: number
  },
): Promise<{ delivered: boolean; tries: number; lastStatus: number | null; refused?: string }> {
  const payload = JSON.stringify(body)
  let lastStatus: number | null = null
  for (let attempt = 1; attempt <= CALLBACK_TRIES; attempt++) {
    try {
      const to = await target(url, options.allowedHosts ?? [])
      if ('refused' in to)
        return { delivered: false, tries: 0, lastStatus: null, refused: to.refused }
      lastStatus = await post(url, payload, options.caPem, to)
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
