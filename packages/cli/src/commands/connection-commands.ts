/**
 * `desklink connections …`. Passwords are read from standard input and sealed here, to the
 * target group's public key, before anything is sent: the server never receives them in
 * plaintext. Each create is tested on a machine of the target; the status says how it went.
 *
 * Connect with sign-in (`--sign-in`): the person signs in to the tenant in a browser (or with
 * `--sign-in-username` and the password on stdin) for scope `desktopflows.execute` and the
 * target group; the CLI hands the one-time code to the server, which redeems it itself.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import type { Command } from '@commander-js/extra-typings'
import {
  type Connection,
  type ConnectionTargetKey,
  type ConnectionUsage,
  groupAudience,
  type Machine,
  type MachineGroup,
  sealToGroup,
  SIGN_IN_SCOPE,
} from '@desklink/protocol'

import { type ApiClient, apiClientFor } from '../client/api-client.ts'
import {
  type AuthorizationCodeGrant,
  authorizeInBrowser,
  authorizeWithPassword,
  discover,
} from '../client/oauth-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { principalLabel, principalPath, tryNameOf, withName } from './display-names.ts'
import { ENVIRONMENT_HELP, environmentOf } from './environment-option.ts'
import { tryOpenBrowser } from './login-commands.ts'
import { idOf, namedArguments } from './names.ts'
import { wholeNumber } from './option-values.ts'

type Items<T> = { items: T[] }

const id = (value: string) => encodeURIComponent(value)

/** What the machine said of a failed test, when it said more than the error's message. */
const detailOf = (c: Connection): string | undefined =>
  (c.error?.details as { detail?: string } | undefined)?.detail

function summary(c: Connection): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    username: c.username ?? `(credential ${c.credentialId ?? ''})`,
    osAccount: c.osAccount ?? '',
    ...(c.error && { error: c.error.message }),
    ...(detailOf(c) && { reason: detailOf(c) }),
    lastTestedAt: c.lastTestedAt ?? '',
    lastUsedAt: c.lastUsedAt ?? '',
  }
}

/**
 * A stored connection whose test failed: the output above says why, the error what to do next
 * (the connection stays, with its status); the exit code says so too.
 */
function failed(c: Connection): never {
  const next =
    c.type === 'signIn'
      ? `desklink connections update ${c.id} --sign-in`
      : c.type === 'password'
        ? `echo -n "$PASSWORD" | desklink connections update ${c.id} --username <user> --password-stdin`
        : `desklink connections test ${c.id}`
  throw new CliError(
    c.error?.code ?? 'ConnectionNotConnected',
    `The connection's test failed: ${(c.error?.message ?? c.status).replace(/\.?$/, '.')} ` +
      `The connection '${c.name}' is saved with status ${c.status}: fix it with \`${next}\`, ` +
      `or delete it with \`desklink connections delete ${c.id}\`.`,
    { details: c.error?.details },
  )
}

interface SignInOptions {
  readonly signInUsername?: string | undefined
  readonly browser: boolean
  readonly timeout: string
}

/** Signs the person in for a sign-in connection to `groupId`; returns the code to hand over. */
async function signInFor(
  io: CliIo,
  client: ApiClient,
  groupId: string,
  o: SignInOptions,
): Promise<AuthorizationCodeGrant> {
  const metadata = await discover(io.fetch, client.profile.server, client.profile.tenant)
  const grant = { scope: `${SIGN_IN_SCOPE} offline_access`, resource: groupAudience(groupId) }
  if (o.signInUsername) {
    const password = (await io.readStdin()).replace(/\r?\n$/, '')
    return authorizeWithPassword({
      fetchFn: io.fetch,
      metadata,
      username: o.signInUsername,
      password,
      grant,
    })
  }
  return authorizeInBrowser({
    metadata,
    grant,
    timeoutMs: wholeNumber('--timeout', o.timeout) * 1000,
    showUrl: (url) => {
      io.err(`Sign in for this connection in a browser:\n\n  ${url}\n\nWaiting for the sign-in…\n`)
      if (o.browser) tryOpenBrowser(url)
    },
  })
}

export function registerConnectionCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)
  const connections = program
    .command('connections')
    .description('Desktop flow connections: a machine or group, an identity, a run owner.')

  connections
    .command('list')
    .description('List your connections in an environment.')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<Connection>>(
        'GET',
        `/environments/${id(await environmentOf(io, o.environment))}/connections`,
      )
      printTable(
        io,
        o,
        items.map((c) => ({
          id: c.id,
          name: c.name,
          status: c.status,
          username: c.username ?? (c.credentialId ? '(credential)' : ''),
          osAccount: c.osAccount ?? '',
          lastUsedAt: c.lastUsedAt ?? '',
        })),
        ['id', 'name', 'status', 'username', 'osAccount', 'lastUsedAt'],
        items,
      )
    })

  connections
    .command('create <name>')
    .description(
      'Create a connection to a machine (--machine) or a machine group (--group) and test it there. ' +
        'Username and password: --username (DOMAIN\\user, MACHINE\\user, .\\user, local\\user, user@domain ' +
        'or user) with the password on standard input; it is sealed to the target here. Or --credential (id or name). ' +
        'Or --sign-in: connect with sign-in (attended runs only) as the person who signs in.',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--machine <id|name>', 'target machine')
    .option('--group <id|name>', 'target machine group')
    .option('--username <name>', 'the account the flows run as')
    .option('--credential <id|name>', 'use a credential instead of a password')
    .option('--sign-in', 'connect with sign-in: sign in to the tenant in a browser')
    .option('--sign-in-username <name>', 'with --sign-in: no browser, password on standard input')
    .option('--no-browser', 'with --sign-in: print the sign-in address instead of opening it')
    .option('--timeout <seconds>', 'with --sign-in: how long to wait for the browser', '300')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      if (Boolean(o.machine) === Boolean(o.group))
        throw new CliError('InvalidOption', 'Name exactly one of --machine or --group.', {
          exitCode: 2,
        })
      if ([o.username, o.credential, o.signIn].filter(Boolean).length !== 1)
        throw new CliError(
          'InvalidOption',
          'Give one of --username (password on stdin), --credential or --sign-in.',
          { exitCode: 2 },
        )
      const client = api()
      const environmentId = await environmentOf(io, o.environment)
      const machineId = o.machine && (await idOf(io, 'machine', o.machine, environmentId))
      const groupId = o.group && (await idOf(io, 'group', o.group, environmentId))
      const target = machineId ? { machineId } : { groupId: groupId ?? '' }
      const credentialId =
        o.credential && (await idOf(io, 'credential', o.credential, environmentId))
      let body: Record<string, unknown>
      if (credentialId) {
        body = { name, target, credentialId }
      } else if (o.signIn) {
        const signInGroupId = machineId
          ? (await client.request<Machine>('GET', `/machines/${id(machineId)}`)).standaloneGroupId
          : (groupId ?? '')
        body = { name, target, signIn: await signInFor(io, client, signInGroupId, o) }
      } else {
        const password = (await io.readStdin()).replace(/\r?\n$/, '')
        if (!password)
          throw new CliError('MissingPassword', 'Pass the password on standard input.', {
            exitCode: 2,
          })
        const publicKey = machineId
          ? (await client.request<Machine>('GET', `/machines/${id(machineId)}`))
              .standaloneGroupPublicKey
          : (await client.request<MachineGroup>('GET', `/machine-groups/${id(groupId ?? '')}`))
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
        `/environments/${id(environmentId)}/connections`,
        body,
      )
      printObject(io, o, o.json ? created : summary(created))
      if (created.status !== 'Connected') failed(created)
    })

  namedArguments(connections.command('update <connection>'), io, 'connection')
    .description(
      'Rename a connection (--name); change its account (--username, --password-stdin) or sign ' +
        'in again (--sign-in), which tests it again on a machine of its target.',
    )
    .option('--name <name>', 'new display name')
    .option('--username <name>', 'password connections: the account the flows run as')
    .option('--password-stdin', 'password connections: a new password, on standard input')
    .option('--sign-in', 'sign in again (sign-in connections)')
    .option('--sign-in-username <name>', 'with --sign-in: no browser, password on standard input')
    .option('--no-browser', 'with --sign-in: print the sign-in address instead of opening it')
    .option('--timeout <seconds>', 'with --sign-in: how long to wait for the browser', '300')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const client = api()
      const current = await client.request<Connection>('GET', `/connections/${id(connectionId)}`)
      const body: Record<string, unknown> = {
        ...(o.name && { name: o.name }),
        ...(o.username && { username: o.username }),
      }
      if ((o.passwordStdin || o.username) && current.type !== 'password')
        throw new CliError(
          'InvalidOption',
          `--username and --password-stdin change password connections; '${current.name}' is a ` +
            `${current.type === 'signIn' ? 'sign-in' : 'credential'} connection.`,
          { exitCode: 2 },
        )
      if (o.passwordStdin) {
        const password = (await io.readStdin()).replace(/\r?\n$/, '')
        if (!password)
          throw new CliError('MissingPassword', 'Pass the password on standard input.', {
            exitCode: 2,
          })
        const { publicKey } = await client.request<ConnectionTargetKey>(
          'GET',
          `/connections/${id(current.id)}/target-key`,
        )
        body.sealedPassword = await sealToGroup(publicKey, password, `connection:${current.id}`)
      }
      if (o.signIn) body.signIn = await signInFor(io, client, current.targetGroupId, o)
      const c = await client.request<Connection>('PATCH', `/connections/${id(connectionId)}`, body)
      printObject(io, o, o.json ? c : summary(c))
      const tested = o.signIn || o.username || o.passwordStdin
      if (tested && c.status !== 'Connected') failed(c)
    })

  namedArguments(connections.command('show <connection>'), io, 'connection')
    .description(
      'Show a connection, its last test and when it was last used ' +
        '(`desklink connections inventory` lists what ran through it).',
    )
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const c = await api().request<Connection>('GET', `/connections/${id(connectionId)}`)
      printObject(io, o, o.json ? c : summary(c))
    })

  namedArguments(connections.command('inventory <connection>'), io, 'connection')
    .description(
      'Which flows ran through a connection, on which machines, as which run owner: how many ' +
        'runs, and when last.',
    )
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const client = api()
      const { items } = await client.request<Items<ConnectionUsage>>(
        'GET',
        `/connections/${id(connectionId)}/inventory`,
      )
      // Most rows share a run owner or two: each is read once.
      const owners = new Map<string, Promise<string | undefined>>()
      const ownerName = (u: ConnectionUsage) => {
        const path = principalPath(u.runOwnerType, u.runOwnerId)
        if (!owners.has(path)) owners.set(path, tryNameOf(client, path))
        return owners.get(path)
      }
      const rows = await Promise.all(
        items.map(async (u) => ({
          flow: withName(u.flowId, u.flowName),
          machine: u.machineId ? withName(u.machineId, u.machineName ?? undefined) : '',
          runOwner: principalLabel(u.runOwnerType, u.runOwnerId, await ownerName(u)),
          runs: u.runs,
          lastRunAt: u.lastRunAt,
        })),
      )
      printTable(io, o, rows, ['flow', 'machine', 'runOwner', 'runs', 'lastRunAt'], items)
    })

  namedArguments(connections.command('test <connection>'), io, 'connection')
    .description('Test a connection again on a machine of its target.')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      const c = await api().request<Connection>('POST', `/connections/${id(connectionId)}/test`)
      printObject(io, o, o.json ? c : summary(c))
      if (c.status !== 'Connected') failed(c)
    })

  namedArguments(connections.command('delete <connection>'), io, 'connection')
    .description('Delete a connection.')
    .option('--json', 'print JSON')
    .action(async (connectionId, o) => {
      await api().request('DELETE', `/connections/${id(connectionId)}`)
      printObject(io, o, { deleted: connectionId })
    })
}
