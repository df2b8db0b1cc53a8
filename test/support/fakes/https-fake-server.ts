/**
 * Plumbing the protocol fakes share: an HTTPS server on 127.0.0.1 with an ephemeral port, JSON
 * replies, bounded request bodies, and a stop that also drops kept-alive connections, so a
 * client's connection pool never holds a suite open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server, type ServerOptions } from 'node:https'
import type { AddressInfo } from 'node:net'

export type FakeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
) => Promise<void> | void

export interface RunningHttpsFake {
  readonly url: string
  readonly server: Server
  stop(): Promise<void>
}

export async function listenHttps(
  options: ServerOptions,
  handler: FakeHandler,
): Promise<RunningHttpsFake> {
  const server = createServer(options, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1')
    void Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((error: unknown) => {
        if (res.headersSent) res.destroy()
        else sendJson(res, 500, { fakeError: String(error) })
      })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  let stopping: Promise<void> | undefined
  return {
    url: `https://127.0.0.1:${port}`,
    server,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return stopping
    },
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(payload)
}

export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new Error('request body too large')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export function queryObject(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams)
}
