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
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const logs: string[] = []
  const settings = {
    DESKLINK_DATA_DIR: dataDir,
    DESKLINK_DATABASE_URL: database.url,
    DESKLINK_HOST: '127.0.0.1',
    DESKLINK_PORT: String(port),
    DESKLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
    DESKLINK_LOG_LEVEL: 'debug',
    ...env,
  }
  let child: ChildProcess | undefined

  async function start(): Promise<void> {
    const started = spawn(process.execPath, [BIN, 'server'], {
      env: { ...process.env, ...settings },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = started
    let partial = ''
    started.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      logs.push(...lines.filter(Boolean))
    })
    let errors = ''
    started.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')))
    await waitFor(async () => {
      if (started.exitCode !== null) throw new Error(`the server exited: ${errors}`)
      try {
        return (await fetch(`${url}/readyz`)).ok
      } catch {
        return false
      }
    }, 'the server process')
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

  await start()
  return {
    url,
    database,
    dataDir,
    logs,
    async restart() {
      await stop()
      await start()
    },
    async close() {
      await stop()
      await database.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
