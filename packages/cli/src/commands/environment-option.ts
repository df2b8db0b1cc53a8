/**
 * `--environment`: optional wherever a command works in one environment. Without it, the
 * environment the caller has roles in, when that is only one; with roles in several, the
 * command asks which (rather than guess and act on the wrong one).
 *
 * @module
 */
import type { Environment, Me } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'

export const ENVIRONMENT_HELP =
  'environment id or name (default: yours, when you have roles in one)'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Ids are UUIDs; anything else given where an id may be is taken as a name. */
export const isId = (value: string) => UUID.test(value)

/** The id of the environment of that name among those the caller can see. */
async function environmentNamed(io: CliIo, name: string): Promise<string> {
  const { items } = await apiClientFor(io).request<{ items: Environment[] }>('GET', '/environments')
  const found = items.filter((environment) => environment.name === name)
  if (found.length === 1) return found[0].id
  throw new CliError(
    found.length === 0 ? 'ResourceNotFound' : 'NameAmbiguous',
    `${found.length === 0 ? 'No' : 'More than one'} environment named '${name}' that you can ` +
      'see: `desklink env list` shows their names and ids.',
    { exitCode: 2, ...(found.length > 1 && { details: { ids: found.map((e) => e.id) } }) },
  )
}

/** The environment given, else the caller's only one; a clear error otherwise. */
export async function environmentOf(io: CliIo, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    if (given.trim() === '')
      throw new CliError('InvalidOption', '--environment is empty: give an environment id.', {
        exitCode: 2,
      })
    return isId(given) ? given : environmentNamed(io, given)
  }
  const me = await apiClientFor(io).request<Me>('GET', '/me')
  const environments = [...new Set(me.roles.map((role) => role.environmentId))]
  if (environments.length === 1) return environments[0]
  throw new CliError(
    'NoEnvironment',
    environments.length === 0
      ? 'You have no role in any environment: pass --environment <id> (desklink env list).'
      : `You have roles in ${environments.length} environments: pass --environment with one ` +
          'of them (desklink env list shows their names).',
    { exitCode: 2, details: { environments } },
  )
}
