/**
 * `desklink agent …`: register this machine, run the agent daemon, show its status, join and
 * leave machine groups. The agent runs as root in production (it checks passwords and starts
 * processes as other users); its state lives in /var/lib/desklink-agent and its trust policy in
 * /etc/desklink/agent-policy.json (DESKLINK_AGENT_STATE_DIR and DESKLINK_AGENT_POLICY move them).
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { hostname, release } from 'node:os'
import { join } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import {
  AgentError,
  createAgentRunner,
  createStateStore,
  joinGroup,
  leaveGroup,
  loadAgentPolicy,
  pamCheck,
  type PamOutcome,
  registerMachine,
  resolveAgentConfig,
} from '@desklink/agent'
import { pino } from 'pino'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject } from '../output/print.ts'
import { defaultDataDir, localAgentStateDir } from './local-agent.ts'
import { idOf } from './names.ts'

/** Runs the PAM check in a child process: PAM blocks for seconds on a wrong password. */
function runPamCheck(
  io: CliIo,
  service: string,
  user: string,
  password: string,
): Promise<PamOutcome> {
  return new Promise((resolve, reject) => {
    const [command = process.execPath, ...prefix] = io.selfCommand
    const child = spawn(command, [...prefix, 'agent', 'pam-check'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', reject)
    child.on('close', () => {
      try {
        resolve(JSON.parse(output) as PamOutcome)
      } catch {
        resolve({ ok: false, reason: 'pamError' })
      }
    })
    child.stdin.end(JSON.stringify({ service, user, password }))
  })
}

const osName = () => `${process.platform} ${release()}`.slice(0, 64)

/** Agent errors become CLI errors with the same code. */
async function asCli<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof AgentError)
      throw new CliError(error.code, error.message, { details: error.details })
    throw error
  }
}

export function registerAgentCommands(program: Command, io: CliIo): void {
  const agent = program
    .command('agent')
    .description(
      'The machine agent: register this machine, run the agent, join machine groups. ' +
        'State: DESKLINK_AGENT_STATE_DIR (default /var/lib/desklink-agent); trust policy: DESKLINK_AGENT_POLICY ' +
        '(default /etc/desklink/agent-policy.json, root-owned). See docs/agent.md.',
    )
  const config = () => resolveAgentConfig(io.env)
  /** Whether a path is there, readable or not (a file in a root-only directory is). */
  const pathExists = (path: string) => {
    try {
      statSync(path)
      return true
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT'
    }
  }
  /**
   * The agent registered here: the service's (DESKLINK_AGENT_STATE_DIR, else its default) or,
   * when that is not registered and no state directory was given, the local agent of
   * `desklink up` started in this directory (said on standard error).
   */
  const registeredAgent = () => {
    const { stateDir } = config()
    const service = createStateStore(stateDir)
    const state = service.read()
    if (state) return { store: service, state }
    const upAgent = localAgentStateDir(defaultDataDir(io))
    const local = createStateStore(upAgent)
    // Only where no service agent is registered: one this user cannot read still is.
    const noService =
      io.env.DESKLINK_AGENT_STATE_DIR === undefined && !pathExists(join(stateDir, 'state.json'))
    const localState = noService ? local.read() : undefined
    if (localState) {
      io.err(`The local agent of desklink up (${upAgent}):\n`)
      return { store: local, state: localState }
    }
    throw new CliError(
      'NotRegistered',
      `This machine is not registered (${stateDir}): run desklink agent register. ` +
        'For the local agent of desklink up, run this where desklink up runs ' +
        '(or set DESKLINK_AGENT_STATE_DIR to <data dir>/agent).',
      { exitCode: 2 },
    )
  }

  agent
    .command('register')
    .description(
      'Register this machine with a one-time registration token read from standard input. ' +
        'Make the token with `desklink machines token --environment ID`. Keys are made here; ' +
        "only public keys are sent. The local policy must allow the token's tenant.",
    )
    .requiredOption('--server <url>', 'the server URL (its public URL)')
    .option('--name <name>', 'machine name', hostname().slice(0, 100))
    .option('--description <text>', 'description', '')
    .option('--force', 'replace an existing registration (connections to the old machine break)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      asCli(async () => {
        const cfg = config()
        const token = (await io.readStdin()).trim()
        if (!token)
          throw new CliError('MissingToken', 'Pass the registration token on standard input.', {
            exitCode: 2,
          })
        const state = await registerMachine({
          server: o.server,
          token,
          name: o.name,
          description: o.description,
          force: Boolean(o.force),
          hostname: hostname(),
          os: osName(),
          policy: loadAgentPolicy(cfg.policyFile).policy,
          state: createStateStore(cfg.stateDir),
          fetchFn: io.fetch,
          now: () => new Date(),
        })
        if (o.json) printObject(io, o, { ...state })
        else
          io.out(
            `Registered as machine ${state.name} (${state.machineId}) in environment ${state.environmentId}.\nStart the agent: desklink agent run\n`,
          )
      }),
    )

  agent
    .command('run')
    .description(
      'Run the agent: keep the channel to the server, report sessions. JSON logs on stdout; stop with SIGTERM.',
    )
    .option('--server <url>', 'the server URL, when it changed since registration (same server)')
    .option('--json', 'print errors as JSON')
    .action(async (o) =>
      asCli(async () => {
        const cfg = config()
        if (o.server && createStateStore(cfg.stateDir).read())
          createStateStore(cfg.stateDir).update({ server: o.server.replace(/\/$/, '') })
        const logger = pino({
          base: { service: 'desklink-agent' },
          timestamp: pino.stdTimeFunctions.isoTime,
        })
        const checkPassword = (account: string, password: string) =>
          runPamCheck(io, cfg.pamService, account, password)
        const runner = createAgentRunner({
          checkPassword,
          config: cfg,
          state: createStateStore(cfg.stateDir),
          logger,
          hostname: hostname(),
          os: osName(),
        })
        const stop = io.waitForStop().then(() => runner.stop())
        const outcome = await runner.run()
        if (outcome === 'deleted') {
          throw new CliError(
            'MachineDeleted',
            'The machine was deleted on the server; the agent stopped. Register again to use this machine.',
            { exitCode: 3 },
          )
        }
        await stop
      }),
    )

  agent
    .command('pam-check', { hidden: true })
    .description(
      'Check {service, user, password} (JSON on stdin) with PAM; prints the outcome as JSON. Used by the agent.',
    )
    .action(async () => {
      const input = JSON.parse(await io.readStdin()) as {
        service: string
        user: string
        password: string
      }
      io.out(`${JSON.stringify(pamCheck(input.service, input.user, input.password))}\n`)
    })

  agent
    .command('status')
    .description('Show what the agent knows: registration, group, connection, sessions.')
    .option('--json', 'print JSON')
    .action((o) => {
      const { store, state } = registeredAgent()
      const status = store.readStatus()
      if (o.json) return printObject(io, o, { registration: state, status: status ?? null })
      printObject(io, o, {
        machine: `${state.name} (${state.machineId})`,
        server: state.server,
        tenant: state.tenantId,
        environment: state.environmentId,
        group: state.groupId === state.standaloneGroupId ? '(standalone)' : state.groupId,
        registration: state.deleted ? 'deleted on the server' : 'active',
        agent: status ? `${status.mode} since ${status.since} (pid ${status.pid})` : 'not running',
        ...(status?.lastError && { detail: status.lastError }),
      })
      return undefined
    })

  agent
    .command('join-group <group>')
    .description(
      'Join a machine group (id, or name in the machine’s environment). The group password is read from standard input (at least 12 characters); ' +
        'the first machine sets it, later machines must give the same. You must be signed in ' +
        '(desklink login) as someone who manages both this machine and the group.',
    )
    .option('--json', 'print JSON')
    .action(async (group, o) =>
      asCli(async () => {
        const { store, state } = registeredAgent()
        const groupId = await idOf(io, 'group', group, state.environmentId)
        const password = (await io.readStdin()).replace(/\r?\n$/, '')
        const result = await joinGroup({
          state: store,
          groupId,
          password,
          principalToken: await apiClientFor(io).accessToken(),
          fetchFn: io.fetch,
        })
        if (o.json) printObject(io, o, result)
        else
          io.out(
            `Joined machine group ${result.name} (${result.groupId})${result.createdKey ? '; this machine created the group key' : ''}.\n`,
          )
      }),
    )

  agent
    .command('leave-group')
    .description('Leave the machine group; the machine keeps the group settings.')
    .option('--json', 'print JSON')
    .action(async (o) =>
      asCli(async () => {
        await leaveGroup({
          state: registeredAgent().store,
          principalToken: await apiClientFor(io).accessToken(),
          fetchFn: io.fetch,
        })
        if (o.json) printObject(io, o, { left: true })
        else io.out('Left the machine group.\n')
      }),
    )
}
