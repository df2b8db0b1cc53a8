/**
 * `--environment`: optional wherever a command works in one environment. Without it, the
 * environment the caller has roles in, when that is only one; with roles in several, the
 * command asks which (rather than guess and act on the wrong one).
 *
 * @module
 */
import type { Me } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'

export const ENVIRONMENT_HELP = 'environment id (default: yours, when you have roles in one)'

/** The environment given, else the caller's only one; a clear error otherwise. */
export async function environmentOf(io: CliIo, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    if (given.trim() === '')
      throw new CliError('InvalidOption', '--environment is empty: give an environment id.', {
        exitCode: 2,
      })
    return given
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
