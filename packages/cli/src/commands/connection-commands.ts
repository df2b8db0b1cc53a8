/**
 * `desklink connections …`. Passwords are read from standard input and sealed here, to the
 * target group's public key, before anything is sent: the server never receives them in
 * plaintext. Each create is tested on a machine of the target; the status says how it went.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import type { Command } from '@commander-js/extra-typings'
import { type Connection, type Machine, type MachineGroup, sealToGroup } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'

type Items<T> = { items: T[] }
const id = (value: string) => encodeURIComponent(value)

function summary(c: Connection): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    username: c.username ?? `(credential ${c.credentialId ?? ''})`,
    osAccount: c.osAccount ?? '',
    ...(c.error && {
      error: c.error.message,
      reason: (c.error.details as { reason?: string; detail?: string } | undefined)?.detail ?? '',
    }),
    lastTestedAt: c.lastTestedAt ?? '',
  }
}

/** A stored connection whose test failed: the output above says why; the exit code says so too. */
function failed(c: Connection): never {
  throw new CliError(
    c.error?.code ?? 'ConnectionNotConnected',
    `The connection's test failed: ${c.error?.message ?? c.status}`,
    {
      details: c.error?.details,
    },
  )
}

export function registerConnectionCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)
  const connections = program
    .command('connections')
    .description('Desktop flow connections: a machine or group, an identity, a run owner.')

  connections
    .command('list')
    .description('List your connections in an environment.')
    .requiredOption('--environment <id>', 'environment id')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<Connection>>(
        'GET',
        `/environments/${id(o.environment)}/connections`,
      )
      printTable(
        io,
        o,
        items.map((c) => ({
          id: c.id,
          name: c.name,
          status: c.status,
          username: c.username ?? '',
          osAccount: c.osAccount ?? '',
        })),
        ['id', 'name', 'status', 'username', 'osAccount'],
        items,
      )
    })

  connections
    .command('create <name>')
    .description(
      'Create a connection to a machine (--machine) or a machine group (--group) and test it there.\n' +
        'Username and password: --username (DOMAIN\\user, MACHINE\\user, .\\user, local\\user, user@domain\n' +
        'or user) with the password on standard input; it is sealed to the target here. Or --credential ID.',
    )
    .requiredOption('--environment <id>', 'environment id')
    .option('--machine <id>', 'target machine')
    .option('--group <id>', 'target machine group')
    .option('--username <name>', 'the account the flows run as')
    .option('--credential <id>', 'use a credential instead of a password')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      if (Boolean(o.machine) === Boolean(o.group))
        throw new CliError('InvalidOption', 'Name exactly one of --machine or --group.', {
          exitCode: 2,
        })
      if (Boolean(o.username) === Boolean(o.credential))
        throw new CliError(
          'InvalidOption',
          'Give --username (password on stdin) or --credential.',
          { exitCode: 2 },
        )
      const client = api()
      const target = o.machine ? { machineId: o.machine } : { groupId: o.group ?? '' }
      let body: Record<string, unknown>
      if (o.credential) {
        body = { name, target, credentialId: o.credential }
      } else {
        const password = (await io.readStdin()).replace(/\r?\n$/, '')
        if (!password)
          throw new CliError('MissingPassword', 'Pass the password on standard input.', {
            exitCode: 2,
          })
        const publicKey = o.machine
          ? (await client.request<Machine>('GET', `/machines/${id(o.machine)}`))
              .standaloneGroupPublicKey
          : (await client.request<MachineGroup>('GET', `/machine-groups/${id(o.group ?? '')}`))
              .publicKey
        if (!publicKey)
          throw new CliError(
            'NoGroupKey',
            'The target has no key yet: a machine must join the group first.',
          )
        const connectionId = randomUUID()
        body = {
          id: connectionId,
          name,
          target,
          username: o.username,
          sealedPassword: await sealToGroup(publicKey, password, `connection:${connectionId}`),
        }
      }
      const created = await client.request<Connection>(
        'POST',
        `/environments/${id(o.environment)}/connections`,
        body,
      )
      printObject(io, o, o.json ? created : summary(created))
      if (created.status !== 'Connected') failed(created)
    })

  connections
    .command('show <connectionId>')
    .description('Show a connection and its last test.')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const c = await api().request<Connection>('GET', `/connections/${id(connectionId)}`)
      printObject(io, o, o.json ? c : summary(c))
    })

  connections
    .command('test <connectionId>')
    .description('Test a connection again on a machine of its target.')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const c = await api().request<Connection>('POST', `/connections/${id(connectionId)}/test`)
      printObject(io, o, o.json ? c : summary(c))
      if (c.status !== 'Connected') failed(c)
    })

  connections
    .command('delete <connectionId>')
    .description('Delete a connection.')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      await api().request('DELETE', `/connections/${id(connectionId)}`)
      printObject(io, o, { deleted: connectionId })
    })
}
