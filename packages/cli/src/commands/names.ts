/**
 * Flows, connections, machines, machine groups and credentials may be named instead of given by
 * id: the name is looked up among those the caller can see in the environment given
 * (`--environment`), else in the caller's environment when its roles name only one.
 *
 * @module
 */
import type { Command } from '@commander-js/extra-typings'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { ENVIRONMENT_HELP, environmentOf, isId } from './environment-option.ts'

const inEnvironment = (collection: string) => (environmentId: string) =>
  `/environments/${encodeURIComponent(environmentId)}/${collection}`
const filtered = (collection: string) => (environmentId: string) =>
  `/${collection}?environmentId=${encodeURIComponent(environmentId)}`

const KINDS = {
  flow: { what: 'desktop flow', list: inEnvironment('desktop-flows'), command: 'flows' },
  connection: { what: 'connection', list: inEnvironment('connections'), command: 'connections' },
  machine: { what: 'machine', list: filtered('machines'), command: 'machines' },
  group: { what: 'machine group', list: filtered('machine-groups'), command: 'groups' },
  credential: { what: 'credential', list: inEnvironment('credentials'), command: 'credentials' },
} as const
export type NameKind = keyof typeof KINDS

/** The id of the flow, connection, machine, group or credential given by id or by name. */
export async function idOf(
  io: CliIo,
  kind: NameKind,
  nameOrId: string,
  environment: string | undefined,
): Promise<string> {
  if (isId(nameOrId)) return nameOrId
  const { what, list, command } = KINDS[kind]
  const environmentId = await environmentOf(io, environment)
  const { items } = await apiClientFor(io).request<{ items: { id: string; name: string }[] }>(
    'GET',
    list(environmentId),
  )
  const found = items.filter((item) => item.name === nameOrId)
  const listing = `desklink ${command} list --environment ${environmentId}`
  if (found.length === 0)
    throw new CliError(
      'ResourceNotFound',
      `No ${what} named '${nameOrId}' that you can see in environment ${environmentId}. ` +
        `\`${listing}\` shows their names and ids.`,
      { exitCode: 2 },
    )
  if (found.length > 1)
    throw new CliError(
      'NameAmbiguous',
      `More than one ${what} is named '${nameOrId}' in environment ${environmentId}: ` +
        `give the id of the one you mean (\`${listing}\`).`,
      { exitCode: 2, details: { ids: found.map((item) => item.id) } },
    )
  return found[0].id
}

/**
 * Lets a command's arguments be names, one kind per argument in order (undefined: taken as
 * given): each is looked up before the action runs, which then receives ids. Adds
 * `--environment` for the look-up.
 */
export function namedArguments<C extends Command<string[]>>(
  command: C,
  io: CliIo,
  ...kinds: (NameKind | undefined)[]
): C {
  command.option('--environment <id>', `where to look up names: ${ENVIRONMENT_HELP}`)
  command.hook('preAction', async (_, action) => {
    let { environment } = action.opts() as { environment?: string }
    const args = action.processedArgs as string[]
    for (const [i, kind] of kinds.entries()) {
      if (!kind || args[i] === undefined || isId(args[i])) continue
      // Found once, for every name given.
      environment = await environmentOf(io, environment)
      args[i] = await idOf(io, kind, args[i], environment)
    }
  })
  return command
}
