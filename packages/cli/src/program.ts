/**
 * The `desklink` command: one program for the server, the agent and the client verbs.
 *
 * @module
 */
import { Command, CommanderError } from '@commander-js/extra-typings'

import { registerAdminCommands } from './commands/admin-commands.ts'
import { registerAgentCommands } from './commands/agent-commands.ts'
import { registerConnectionCommands } from './commands/connection-commands.ts'
import { registerCredentialCommands } from './commands/credential-commands.ts'
import { registerFlowCommands } from './commands/flow-commands.ts'
import { registerLoginCommands } from './commands/login-commands.ts'
import { registerMachineCommands } from './commands/machine-commands.ts'
import { registerRunCommands } from './commands/run-commands.ts'
import { registerServerCommands } from './commands/server-commands.ts'
import { CliError, type CliIo } from './io.ts'
import { printError } from './output/print-error.ts'

export const CLI_VERSION = '0.1.0'

export function buildProgram(io: CliIo): Command {
  const program = new Command('desklink')
    .description(
      'Desklink: a self-hosted control plane for desktop flows.\n\n' +
        'Start here:\n' +
        '  desklink up                 run a server with SQLite under ./.desklink\n' +
        '  desklink login              sign in: a browser, or --username, --password-stdin\n' +
        '  desklink whoami             show who you are signed in as',
    )
    .version(CLI_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride()
  registerServerCommands(program, io)
  registerLoginCommands(program, io)
  registerAdminCommands(program, io)
  registerMachineCommands(program, io)
  registerCredentialCommands(program, io)
  registerConnectionCommands(program, io)
  registerFlowCommands(program, io)
  registerRunCommands(program, io)
  registerAgentCommands(program, io)
  for (const command of program.commands) {
    command
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    for (const sub of command.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    }
  }
  return program
}

/** Runs the CLI and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io)
  const json = argv.includes('--json')
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (error) {
    // Help and version end with 0; anything else commander refuses is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
    if (error instanceof CliError) {
      printError(io, error, json)
      return error.exitCode
    }
    if (error instanceof TypeError && /DESKLINK_|master key|must be/.test(error.message)) {
      io.err(`Configuration error: ${error.message}\n`)
      return 2
    }
    io.err(`Unexpected error: ${(error as Error).stack ?? String(error)}\n`)
    return 1
  }
}
