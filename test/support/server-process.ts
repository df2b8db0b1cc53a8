/**
 * A real `desklink server` process on 127.0.0.1 with a fresh database, as an operator runs it,
 * for the suites that must see the server as a process of its own (the run queue's rules, the
 * session rules): its log lines are read from its standard output.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type Backend, createTestDatabase } from './backends.ts'
import { BIN, waitFor } from './cli-process.ts'
import { ADMIN_PASSWORD, type TestServer } from './test-server.ts'

/** A port nothing listens on now, for a server that must keep its port across restarts. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

export async function startServerProcess(
  backend: Backend,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const database = await createTestDatabase(backend)
  const dataDir = mkdtempSync(join(tmpdir(), 'desklink-data-'))
  const logs: string[] = []
  // Only the test's settings: none of the DESKLINK_* variables of the shell that runs the tests.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('DESKLINK_')),
  )
  const settings: Record<string, string> = {
    DESKLINK_DATA_DIR: dataDir,
    DESKLINK_DATABASE_URL: database.url,
    DESKLINK_HOST: '127.0.0.1',
    // The first start takes a free port and says which; restarts keep it.
    DESKLINK_PORT: '0',
    DESKLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
    DESKLINK_LOG_LEVEL: 'debug',
    ...env,
  }
  let child: ChildProcess | undefined
  let url = ''

  async function start(): Promise<void> {
    const started = spawn(process.execPath, [BIN, 'server'], {
      env: { ...inherited, ...settings },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = started
    let partial = ''
    let listening: string | undefined
    started.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines.filter(Boolean)) {
        logs.push(line)
        // This server's own address, from its log: not whatever answers on a port.
        if (line.includes('"listening"')) listening = (JSON.parse(line) as { url: string }).url
      }
    })
    let errors = ''
    started.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')))
    started.once('exit', (code, signal) => {
      if (child === started)
        logs.push(JSON.stringify({ msg: 'server process exited', code, signal, errors }))
    })
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`the server exited: ${errors}`)
        if (!listening) return false
        try {
          return (await fetch(`${listening}/readyz`, { signal: AbortSignal.timeout(1_000) })).ok
        } catch {
          return false
        }
      },
      'the server process',
      30_000,
    )
    url = listening ?? ''
    settings.DESKLINK_PORT = new URL(url).port
  }

  async function stop(): Promise<void> {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    const timer = setTimeout(() => running.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  const removeAll = async () => {
    await stop()
    await database.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
  try {
    await start()
  } catch (error) {
    await removeAll()
    throw error
  }
  return {
    get url() {
      return url
    },
    database,
    dataDir,
    logs,
    async restart() {
      await stop()
      await start()
    },
    close: removeAll,
  }
}
