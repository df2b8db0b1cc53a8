/**
 * `desklink server` (the control plane alone, JSON logs on stdout) and `desklink up` (the
 * embedded default for one machine: server on 127.0.0.1 with SQLite under ./.desklink, logs in
 * a file, a short summary on the terminal).
 *
 * @module
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import {
  createLogger,
  resolveServerConfig,
  type RunningServer,
  startServer,
} from '@desklink/server'
import { pino } from 'pino'

import type { CliIo } from '../io.ts'
import { SAMPLE_FLOW, SAMPLE_FLOW_NAME } from '../sample/hello-flow.ts'
import { defaultDataDir, type LocalAgent, startLocalAgent } from './local-agent.ts'

interface ServerOptions {
  port?: string
  host?: string
  dataDir?: string
  databaseUrl?: string
  publicUrl?: string
  logLevel?: string
}

async function runUntilStopped(
  io: CliIo,
  server: RunningServer,
  stop: Promise<string>,
  agent?: LocalAgent,
): Promise<void> {
  const signal = await stop
  io.err(`\n${signal} received: shutting down…\n`)
  await agent?.stop()
  await server.close()
  io.err('Stopped.\n')
}

function printFirstStart(io: CliIo, server: RunningServer, write: (text: string) => void): void {
  if (!server.bootstrap.created) return
  write(
    `First start: created tenant 'default', environment 'default' and administrator '${server.bootstrap.adminUsername ?? ''}'.\n`,
  )
  if (server.bootstrap.generatedPassword) {
    write(
      `Administrator password (shown this once, store it now): ${server.bootstrap.generatedPassword}\n`,
    )
  }
  void io
}

export function registerServerCommands(program: Command, io: CliIo): void {
  const withServerOptions = <C extends Command>(command: C) =>
    command
      .option(
        '--port <port>',
        'TCP port to listen on, 0 for any free port (env DESKLINK_PORT; default 8470)',
      )
      .option('--host <host>', 'address to bind (env DESKLINK_HOST)')
      .option(
        '--data-dir <dir>',
        'directory for the database and key files (env DESKLINK_DATA_DIR)',
      )
      .option('--database-url <url>', 'postgres://… or a SQLite file (env DESKLINK_DATABASE_URL)')
      .option('--public-url <url>', 'URL clients use to reach the server (env DESKLINK_PUBLIC_URL)')
      .option(
        '--log-level <level>',
        'fatal, error, warn, info, debug, trace or silent (env DESKLINK_LOG_LEVEL)',
      )

  withServerOptions(
    program
      .command('server')
      .summary('Run the Desklink server (JSON logs on stdout)')
      .description(
        'Run the Desklink server (API, OAuth2 token issuer). Logs JSON lines to stdout.',
      ),
  ).action(async (options: ServerOptions) => {
    const stop = io.waitForStop()
    const config = resolveServerConfig(io.env, options)
    const logger = createLogger({ level: config.logLevel })
    const server = await startServer(config, logger)
    printFirstStart(io, server, (text) => io.err(text))
    await runUntilStopped(io, server, stop)
    logger.flush()
  })

  withServerOptions(
    program
      .command('up')
      .summary('Set up and run Desklink on this machine (server + SQLite under ./.desklink)')
      .description(
        'Set up and run Desklink on this machine: the server on 127.0.0.1 with SQLite under ./.desklink. ' +
          'It also registers and runs a local agent for this machine (--no-agent to skip). ' +
          'Logs go to <data dir>/server.log and <data dir>/agent.log. Stop with Ctrl+C.',
      ),
  )
    .option('--no-agent', 'do not start the local agent')
    .action(async (options: ServerOptions & { agent?: boolean }) => {
      const stop = io.waitForStop()
      const config = resolveServerConfig(io.env, {
        ...options,
        dataDir: options.dataDir ?? defaultDataDir(io),
      })
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
      const logFile = join(config.dataDir, 'server.log')
      const logger = createLogger({
        level: config.logLevel,
        destination: pino.destination({ dest: logFile, sync: false, mkdir: true }),
      })
      io.out('Starting Desklink…\n')
      const server = await startServer(config, logger)
      io.out(`Desklink is running at ${server.url}\n`)
      io.out(`  data:     ${config.dataDir}\n`)
      io.out(
        `  database: ${/^postgres/i.test(config.databaseUrl) ? 'PostgreSQL' : config.databaseUrl}\n`,
      )
      io.out(`  logs:     ${logFile}\n`)
      let agent: LocalAgent | undefined
      if (options.agent !== false) {
        try {
          agent = await startLocalAgent(io, server, config.dataDir)
          io.out(`  agent:    machine '${agent.machineName}', log ${agent.logFile}\n`)
        } catch (error) {
          io.err(`The local agent did not start: ${(error as Error).message}\n`)
        }
      }
      const sample = await server.installFlow(SAMPLE_FLOW)
      io.out(
        `  sample:   desktop flow '${SAMPLE_FLOW_NAME}' (${sample.id})${sample.installed ? ', installed' : ''}\n`,
      )
      printFirstStart(io, server, (text) => io.out(text))
      io.out(`\nSign in from another terminal:\n  desklink login --server ${server.publicUrl}\n`)
      io.out(
        `Then run the sample through a connection (see README, "First run"):\n  desklink run ${SAMPLE_FLOW_NAME} --connection <connection>\n`,
      )
      io.out('Stop with Ctrl+C.\n')
      await runUntilStopped(io, server, stop, agent)
      logger.flush()
    })
}
