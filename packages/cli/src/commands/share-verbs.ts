/**
 * `shares`, `share` and `unshare` under a command whose resources are shared the same way
 * (machines, machine groups, desktop flows, credentials): with a user or a service principal, at
 * one of the resource's access levels.
 *
 * @module
 */
import type { Command } from '@commander-js/extra-typings'
import type { Share } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { namedArguments, type NameKind } from './names.ts'

const id = (value: string) => encodeURIComponent(value)

export function registerShareVerbs(
  parent: Command,
  io: CliIo,
  options: {
    /** What the resources are, so that they may be named instead of given by id. */
    readonly kind: NameKind
    /** The resource's API path, from its id. */
    readonly base: (resourceId: string) => string
    /** What each access level allows, for `share --help`. */
    readonly accessHelp: string
    /** The access levels `--access` takes, for `share --help`. */
    readonly levels?: string
  },
): void {
  const { base } = options
  namedArguments(parent.command('shares <resource>'), io, options.kind)
    .description('List who it is shared with.')
    .option('--json', 'print JSON')
    .action(async (resourceId, o) => {
      const { items } = await apiClientFor(io).request<{ items: Share[] }>(
        'GET',
        `${base(resourceId)}/shares`,
      )
      printTable(io, o, items, ['id', 'principalType', 'principalId', 'access'], items)
    })
  namedArguments(parent.command('share <resource>'), io, options.kind)
    .description(`Share as ${options.accessHelp}.`)
    .option('--user <id>', 'user id')
    .option('--service-principal <clientId>', 'service principal client id')
    .option('--access <access>', options.levels ?? 'coOwner or user', 'user')
    .option('--json', 'print JSON')
    .action(async (resourceId, o) => {
      if (Boolean(o.user) === Boolean(o.servicePrincipal)) {
        throw new CliError('InvalidOption', 'Name exactly one of --user or --service-principal.', {
          exitCode: 2,
        })
      }
      const body = {
        principalType: o.user ? 'user' : 'servicePrincipal',
        principalId: o.user ?? o.servicePrincipal,
        access: o.access,
      }
      printObject(
        io,
        o,
        await apiClientFor(io).request<Share>('POST', `${base(resourceId)}/shares`, body),
      )
    })
  namedArguments(parent.command('unshare <resource> <shareId>'), io, options.kind)
    .description('Stop sharing.')
    .option('--json', 'print JSON')
    .action(async (resourceId, shareId, o) => {
      await apiClientFor(io).request('DELETE', `${base(resourceId)}/shares/${id(shareId)}`)
      printObject(io, o, { deleted: shareId })
    })
}
