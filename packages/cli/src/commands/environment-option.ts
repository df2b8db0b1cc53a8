/**
 * `--environment`: optional wherever a command works in one environment. Without it, the first
 * environment the caller has a role in (for most people, the only one).
 *
 * @module
 */
import type { Me } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'

export const ENVIRONMENT_HELP = 'environment id (default: your first environment)'

/** The environment given, else the caller's first; a clear error when the caller has none. */
export async function environmentOf(io: CliIo, given: string | undefined): Promise<string> {
  if (given) return given
  const me = await apiClientFor(io).request<Me>('GET', '/me')
  const first = me.roles[0]?.environmentId
  if (!first)
    throw new CliError(
      'NoEnvironment',
      'You have no role in any environment: pass --environment <id> (desklink env list).',
      { exitCode: 2 },
    )
  return first
}
