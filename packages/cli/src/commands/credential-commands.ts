/**
 * `desklink secret-stores …` and `desklink credentials …`. Secrets go in on standard input or
 * in a JSON file, never as arguments, and nothing here ever prints one: the API returns none.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import type { Credential, Machine, SecretStore } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { ENVIRONMENT_HELP, environmentOf } from './environment-option.ts'
import { idOf, namedArguments } from './names.ts'
import { registerShareVerbs } from './share-verbs.ts'

type Items<T> = { items: T[] }
const id = (value: string) => encodeURIComponent(value)

function readJson(io: CliIo, file: string): unknown {
  try {
    return JSON.parse(readFileSync(resolve(io.cwd, file), 'utf8')) as unknown
  } catch (error) {
    throw new CliError(
      'InvalidOption',
      `Cannot read JSON from ${file}: ${(error as Error).message}`,
      { exitCode: 2 },
    )
  }
}

/** The group a built-in secret is sealed to: a group's, or a machine's own (`--machine`). */
async function sealedTo(
  io: CliIo,
  o: { machine?: string | undefined; group?: string | undefined },
  environmentId: string,
): Promise<{ groupId?: string }> {
  if (o.machine && o.group)
    throw new CliError('InvalidOption', 'Give --machine or --group, not both.', { exitCode: 2 })
  if (o.group) return { groupId: await idOf(io, 'group', o.group, environmentId) }
  if (!o.machine) return {}
  const machineId = await idOf(io, 'machine', o.machine, environmentId)
  const machine = await apiClientFor(io).request<Machine>('GET', `/machines/${id(machineId)}`)
  return { groupId: machine.standaloneGroupId }
}

export function registerCredentialCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)

  const stores = program
    .command('secret-stores')
    .description(
      'Where credentials keep their secrets: HashiCorp Vault, Azure Key Vault, CyberArk CCP.',
    )
  stores
    .command('list')
    .description('List the secret stores of an environment.')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<SecretStore>>(
        'GET',
        `/environments/${id(await environmentOf(io, o.environment))}/secret-stores`,
      )
      printTable(
        io,
        o,
        items.map((s) => ({
          id: s.id,
          name: s.name,
          type: s.type,
          where: s.summary.address ?? s.summary.vaultUrl ?? s.summary.url ?? '',
        })),
        ['id', 'name', 'type', 'where'],
        items,
      )
    })
  stores
    .command('create <name>')
    .description(
      'Configure a secret store from a JSON settings file (see docs/credentials/). Its secrets ' +
        '(Vault token or AppRole secret id, Entra client secret or certificate) are sealed at once.',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .requiredOption('--settings <file>', 'JSON file with the store settings')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      printObject(
        io,
        o,
        await api().request<SecretStore>(
          'POST',
          `/environments/${id(await environmentOf(io, o.environment))}/secret-stores`,
          { name, settings: readJson(io, o.settings) },
        ),
      )
    })
  stores
    .command('show <storeId>')
    .description('Show a secret store (never its secrets).')
    .option('--json', 'print JSON')
    .action(async (storeId, o) =>
      printObject(io, o, await api().request<SecretStore>('GET', `/secret-stores/${id(storeId)}`)),
    )
  stores
    .command('delete <storeId>')
    .description('Delete a secret store.')
    .option('--json', 'print JSON')
    .action(async (storeId, o) => {
      await api().request('DELETE', `/secret-stores/${id(storeId)}`)
      printObject(io, o, { deleted: storeId })
    })

  const credentials = program
    .command('credentials')
    .description('Credentials: named references to secrets, resolved at run time.')
  credentials
    .command('list')
    .description('List the credentials you can use in an environment.')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<Credential>>(
        'GET',
        `/environments/${id(await environmentOf(io, o.environment))}/credentials`,
      )
      printTable(
        io,
        o,
        items.map((c) => ({
          id: c.id,
          name: c.name,
          usage: c.usage,
          store: String(c.secret.store),
          access: c.access,
        })),
        ['id', 'name', 'usage', 'store', 'access'],
        items,
      )
    })
  credentials
    .command('create <name>')
    .description(
      'Create a credential. Give the username with --username or --username-ref FILE (a store reference), ' +
        'and the secret with --secret-ref FILE (a store reference) or --secret-stdin (built-in store; ' +
        'connection credentials also need the --machine or --group they are sealed to). The ' +
        'secret is checked readable now.',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option(
      '--usage <usage>',
      'connection (signs in the session) or flow (read by the flow)',
      'connection',
    )
    .option('--description <text>', 'description', '')
    .option('--username <name>', 'the username')
    .option('--username-ref <file>', 'JSON file: where the username lives in a store')
    .option('--secret-ref <file>', 'JSON file: where the secret lives in a store')
    .option('--secret-stdin', 'read a built-in secret from standard input')
    .option('--machine <id|name>', 'built-in connection secrets: sealed to this machine')
    .option('--group <id|name>', 'built-in connection secrets: sealed to this machine group')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      if (Boolean(o.username) === Boolean(o.usernameRef))
        throw new CliError('InvalidOption', 'Give exactly one of --username or --username-ref.', {
          exitCode: 2,
        })
      if (Boolean(o.secretRef) === Boolean(o.secretStdin))
        throw new CliError('InvalidOption', 'Give exactly one of --secret-ref or --secret-stdin.', {
          exitCode: 2,
        })
      if (o.secretRef && (o.machine || o.group))
        throw new CliError(
          'InvalidOption',
          '--machine and --group seal a built-in secret (--secret-stdin); a store keeps its own.',
          { exitCode: 2 },
        )
      const environmentId = await environmentOf(io, o.environment)
      const secret = o.secretRef
        ? readJson(io, o.secretRef)
        : {
            store: 'builtin',
            value: (await io.readStdin()).replace(/\r?\n$/, ''),
            ...(await sealedTo(io, o, environmentId)),
          }
      const username = o.username
        ? { value: o.username }
        : { fromStore: readJson(io, o.usernameRef ?? '') }
      printObject(
        io,
        o,
        await api().request<Credential>('POST', `/environments/${id(environmentId)}/credentials`, {
          name,
          description: o.description,
          usage: o.usage,
          username,
          secret,
        }),
      )
    })
  namedArguments(credentials.command('show <credential>'), io, 'credential')
    .description('Show a credential: where its secret lives, never the secret.')
    .option('--json', 'print JSON')
    .action(async (credentialId, o) =>
      printObject(
        io,
        o,
        await api().request<Credential>('GET', `/credentials/${id(credentialId)}`),
      ),
    )
  namedArguments(credentials.command('update <credential>'), io, 'credential')
    .description('Rename or describe a credential (username and secret cannot change).')
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--json', 'print JSON')
    .action(async (credentialId, o) =>
      printObject(
        io,
        o,
        await api().request<Credential>('PATCH', `/credentials/${id(credentialId)}`, {
          name: o.name,
          description: o.description,
        }),
      ),
    )
  namedArguments(credentials.command('delete <credential>'), io, 'credential')
    .description(
      'Delete a credential. Refused while connections use it, unless --force: they then fail ' +
        'with CredentialDeleted until they are made again.',
    )
    .option('--force', 'delete it even though connections use it')
    .option('--json', 'print JSON')
    .action(async (credentialId, o) => {
      const force = o.force ? '?force=true' : ''
      await api().request('DELETE', `/credentials/${id(credentialId)}${force}`)
      printObject(io, o, { deleted: credentialId })
    })
  namedArguments(credentials.command('test <credential>'), io, 'credential')
    .description('Check that the secret can be read now (prints no secret).')
    .option('--json', 'print JSON')
    .action(async (credentialId, o) =>
      printObject(
        io,
        o,
        await api().request<Record<string, unknown>>(
          'POST',
          `/credentials/${id(credentialId)}/test`,
        ),
      ),
    )
  namedArguments(credentials.command('dependencies <credential>'), io, 'credential')
    .description('Show the connections that use a credential.')
    .option('--json', 'print JSON')
    .action(async (credentialId, o) =>
      printObject(
        io,
        o,
        await api().request<Record<string, unknown>>(
          'GET',
          `/credentials/${id(credentialId)}/dependencies`,
        ),
      ),
    )
  registerShareVerbs(credentials, io, {
    kind: 'credential',
    base: (credentialId) => `/credentials/${id(credentialId)}`,
    accessHelp: 'coOwner (use, edit, delete, share), user (use) or userCanShare (use, share)',
    levels: 'coOwner, user or userCanShare',
  })
}
