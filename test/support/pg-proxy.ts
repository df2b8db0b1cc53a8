/**
 * A TCP relay in front of PostgreSQL that can lose a commit's answer, or the database itself.
 * Armed, it lets the next `commit` that follows an insert into a given table reach the server,
 * then cuts that connection before the server's answer gets back: the commit happened, and the
 * client cannot know. Cut, it drops every connection until restored. Everything else is relayed
 * untouched, so the server under test speaks to a real PostgreSQL through it.
 */
import { createServer, type Server, Socket } from 'node:net'

export interface PgProxy {
  /** The database URL to hand to the server under test. */
  readonly url: string
  /**
   * Loses the answer to the next commit after an insert into `table` on the same connection;
   * with `thenCut`, the database is then cut off too (see `cut`), so nothing can be read back.
   * The connection is cut `holdMs` after the commit went through (200 ms by default): the
   * server waits for its answer meanwhile.
   */
  armCommitLoss(table: string, options?: { thenCut?: boolean; holdMs?: number }): void
  /** Resolves once the armed commit reached PostgreSQL (its answer is held back). */
  readonly committed: () => Promise<void>
  /** Resolves once an armed loss happened. */
  readonly lost: () => Promise<void>
  /**
   * Drops every connection, and each new one at once, until `restore`: the database is gone.
   * With `stall`, new connections are taken and never answered instead (a network that drops
   * packets rather than refusing).
   */
  cut(options?: { stall?: boolean }): void
  restore(): void
  close(): Promise<void>
}

/** How long the server is given to carry out the commit before the connection is cut. */
const COMMIT_SETTLES_MS = 200

/** A moment that can be awaited before or after it came. */
function moment() {
  let came = false
  let waiters: (() => void)[] = []
  return {
    reset() {
      came = false
      waiters = []
    },
    come() {
      came = true
      for (const resolve of waiters) resolve()
      waiters = []
    },
    passed: () =>
      came ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
  }
}

export async function startPgProxy(databaseUrl: string): Promise<PgProxy> {
  const target = new URL(databaseUrl)
  const sockets = new Set<Socket>()
  let armed: string | undefined
  let cutAfterLoss = false
  let holdMs = COMMIT_SETTLES_MS
  const commitSent = moment()
  const answerLost = moment()
  let down: 'refuse' | 'stall' | undefined

  const server: Server = createServer((client) => {
    if (down === 'refuse') return void client.destroy()
    if (down === 'stall') {
      sockets.add(client)
      client.on('error', () => undefined)
      client.on('close', () => sockets.delete(client))
      return
    }
    const upstream = new Socket()
    sockets.add(client).add(upstream)
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined)
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    upstream.connect(Number(target.port || 5432), target.hostname)
    // What the client sent on this connection since it last committed (latin1: SQL is ASCII).
    let since = ''
    let cutting = false
    client.on('data', (chunk: Buffer) => {
      if (cutting) return
      upstream.write(chunk)
      if (!armed) return
      since = (since + chunk.toString('latin1')).slice(-1_000_000)
      const inserted = since.indexOf(`insert into "${armed}"`)
      const committed = since.indexOf('commit\0', Math.max(inserted, 0))
      if (inserted >= 0 && committed > inserted) {
        armed = undefined
        cutting = true
        commitSent.come()
        setTimeout(() => {
          client.destroy()
          upstream.destroy()
          if (cutAfterLoss) cut()
          answerLost.come()
        }, holdMs)
      } else if (since.includes('commit\0')) since = since.slice(since.lastIndexOf('commit\0'))
    })
    upstream.on('data', (chunk: Buffer) => {
      // Once the commit is on its way, nothing more reaches the client: its answer is lost.
      if (!cutting) client.write(chunk)
    })
  })
  function cut(options: { stall?: boolean } = {}) {
    down = options.stall ? 'stall' : 'refuse'
    for (const socket of sockets) socket.destroy()
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const proxied = new URL(databaseUrl)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(port)

  return {
    url: proxied.toString(),
    armCommitLoss(table, options = {}) {
      armed = table
      cutAfterLoss = options.thenCut === true
      holdMs = options.holdMs ?? COMMIT_SETTLES_MS
      commitSent.reset()
      answerLost.reset()
    },
    committed: commitSent.passed,
    lost: answerLost.passed,
    cut,
    restore() {
      // Stalled connections end now: the client sees them fail and opens new ones.
      if (down === 'stall') for (const socket of sockets) socket.destroy()
      down = undefined
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
