/**
 * Flows, connections and machines may be named instead of given by id: the name is looked up
 * among those the caller can see in the environment given (`--environment`), else in the first
 * environment the caller has a role in.
 *
 * @module
 */
import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { environmentOf } from './environment-option.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const KINDS = {
  flow: {
    what: 'desktop flow',
    list: (environmentId: string) =>
      `/environments/${encodeURIComponent(environmentId)}/desktop-flows`,
    command: 'desklink flows list',
  },
  connection: {
    what: 'connection',
    list: (environmentId: string) =>
      `/environments/${encodeURIComponent(environmentId)}/connections`,
    command: 'desklink connections list',
  },
  machine: {
    what: 'machine',
    list: (environmentId: string) => `/machines?environmentId=${encodeURIComponent(environmentId)}`,
    command: 'desklink machines list',
  },
} as const

/** The id of the flow, connection or machine given by id or by name. */
export async function idOf(
  io: CliIo,
  kind: keyof typeof KINDS,
  nameOrId: string,
  environment: string | undefined,
): Promise<string> {
  if (UUID.test(nameOrId)) return nameOrId
  const { what, list, command } = KINDS[kind]
  const environmentId = await environmentOf(io, environment)
  const { items } = await apiClientFor(io).request<{ items: { id: string; name: string }[] }>(
    'GET',
    list(environmentId),
  )
  const found = items.filter((item) => item.name === nameOrId)
  const listing = `${command} --environment ${environmentId}`
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
