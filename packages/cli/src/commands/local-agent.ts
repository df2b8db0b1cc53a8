/**
 * The local agent `desklink up` runs beside its server: registered once into the default
 * environment (with a policy that allows only the local tenant), then run as a child process
 * whose log goes to `<data dir>/agent.log`. It runs as the user who ran `desklink up`; as root
 * it can do everything a production agent does.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, openSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

import { createStateStore } from '@desklink/agent'
import { parseRegistrationToken } from '@desklink/protocol'
import type { RunningServer } from '@desklink/server'

import { CliError, type CliIo } from '../io.ts'

export interface LocalAgent {
  readonly machineName: string
  readonly logFile: string
  stop(): Promise<void>
}

function run(
  io: CliIo,
  args: string[],
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [command = process.execPath, ...prefix] = io.selfCommand
    const child = spawn(command, [...prefix, ...args], {
      env: { ...io.env, ...env },
      stdio: ['pipe', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr }))
    child.stdin.end(stdin)
  })
}

/** Where `desklink up` keeps its data without `--data-dir`. */
export const defaultDataDir = (io: CliIo) => io.env.DESKLINK_DATA_DIR ?? join(io.cwd, '.desklink')

/** Where `desklink up` keeps its local agent's state, under its data directory. */
export const localAgentStateDir = (dataDir: string) => join(dataDir, 'agent')

export async function startLocalAgent(
  io: CliIo,
  server: RunningServer,
  dataDir: string,
): Promise<LocalAgent> {
  const env = {
    DESKLINK_AGENT_STATE_DIR: localAgentStateDir(dataDir),
    DESKLINK_AGENT_POLICY: join(dataDir, 'agent-policy.json'),
  }
  const state = createStateStore(env.DESKLINK_AGENT_STATE_DIR)
  const current = state.read()
  if (!current || current.deleted) {
    const token = await server.issueLocalRegistrationToken()
    const target = parseRegistrationToken(token)
    if (target && !existsSync(env.DESKLINK_AGENT_POLICY)) {
      const policy = {
        allowedTenants: [target.tenantId],
        join: { type: 'none' },
        enforceOnStart: false,
      }
      writeFileSync(env.DESKLINK_AGENT_POLICY, `${JSON.stringify(policy, null, 2)}\n`, {
        mode: 0o644,
      })
    }
    const args = [
      'agent',
      'register',
      '--server',
      server.publicUrl,
      '--name',
      hostname().slice(0, 100),
    ]
    const registered = await run(io, current?.deleted ? [...args, '--force'] : args, env, token)
    if (registered.code !== 0)
      throw new CliError(
        'LocalAgentFailed',
        `The local agent could not register: ${registered.stderr.trim()}`,
      )
  }
  const logFile = join(dataDir, 'agent.log')
  const log = openSync(logFile, 'a', 0o600)
  const [command = process.execPath, ...prefix] = io.selfCommand
  const child: ChildProcess = spawn(
    command,
    [...prefix, 'agent', 'run', '--server', server.publicUrl],
    {
      env: { ...io.env, ...env },
      stdio: ['ignore', log, log],
    },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    machineName: state.read()?.name ?? hostname(),
    logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
