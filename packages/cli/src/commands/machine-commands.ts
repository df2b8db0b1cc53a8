/**
 * `desklink machines …` and `desklink groups …`: registration tokens, machines, machine
 * groups, members, settings and sharing, over the REST API.
 *
 * @module
 */
import type { Command, OptionValues } from '@commander-js/extra-typings'
import type { Machine, MachineGroup } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { type CliIo, namingFlags } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { ENVIRONMENT_HELP, environmentOf } from './environment-option.ts'
import { namedArguments } from './names.ts'
import { onOff, wholeNumber } from './option-values.ts'
import { registerShareVerbs } from './share-verbs.ts'

type Items<T> = { items: T[] }
const id = (value: string) => encodeURIComponent(value)
const MEMBER_ACCESS = 'co-owner (run, edit, delete, share, manage members) or user (run only)'

interface SettingsOptions {
  maintenance?: string
  slots?: string
  reuseSessions?: string
  extendedPrioritization?: string
}

function settingsPatch(o: SettingsOptions): Record<string, unknown> | undefined {
  const patch = {
    maintenanceMode: onOff('--maintenance', o.maintenance),
    slots: o.slots === undefined ? undefined : wholeNumber('--slots', o.slots, 1),
    reuseSessions: onOff('--reuse-sessions', o.reuseSessions),
    extendedQueuePrioritization: onOff('--extended-prioritization', o.extendedPrioritization),
  }
  return Object.values(patch).some((v) => v !== undefined) ? patch : undefined
}

/** The options that set each field of a machine's or group's request. */
const SETTINGS_FLAGS = {
  name: '--name',
  description: '--description',
  'settings.maintenanceMode': '--maintenance',
  'settings.slots': '--slots',
  'settings.reuseSessions': '--reuse-sessions',
  'settings.extendedQueuePrioritization': '--extended-prioritization',
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's argument tuple is generic
const withSettings = <Args extends any[], Opts extends OptionValues>(
  command: Command<Args, Opts>,
) =>
  command
    .option(
      '--maintenance <on|off>',
      'maintenance mode: no new runs are assigned (a group member takes this one setting of its ' +
        'own; the others are its group’s)',
    )
    .option('--slots <n>', 'concurrent unattended runs (1-64)')
    .option('--reuse-sessions <on|off>', 'run unattended flows in an existing session of the user')
    .option(
      '--extended-prioritization <on|off>',
      'runs that wait only for their user’s session wait, and the queue moves past them ' +
        '(without it, such runs fail at once)',
    )

/** Group names by id, of the groups the caller can see (a group it cannot see shows its id). */
type GroupNames = ReadonlyMap<string, string>

const machineRow = (m: Machine, groups: GroupNames = new Map()) => ({
  id: m.id,
  name: m.name,
  status: m.status,
  group: m.groupId === m.standaloneGroupId ? '(standalone)' : (groups.get(m.groupId) ?? m.groupId),
  sessions: m.sessions
    .map((s) => `${s.user}${s.display ? `@${s.display}` : ''}:${s.state}`)
    .join(' '),
  maintenance: m.effectiveSettings.maintenanceMode ? 'on' : 'off',
  access: m.access,
})

export function registerMachineCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)
  const groupNames = async (): Promise<GroupNames> => {
    const { items } = await api().request<Items<MachineGroup>>('GET', '/machine-groups')
    return new Map(items.map((g) => [g.id, g.name]))
  }
  const machines = program.command('machines').description('Machines that run desktop flows.')
  machines
    .command('token')
    .description('Create a one-time registration token for an environment (valid one hour).')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const created = await api().request<{ token: string; expiresAt: string }>(
        'POST',
        `/environments/${id(await environmentOf(io, o.environment))}/registration-tokens`,
        {},
      )
      if (o.json) return printObject(io, o, created)
      io.out(`${created.token}\n`)
      io.err(
        `Valid until ${created.expiresAt}, once. On the machine: echo <token> | desklink agent register --server <url>\n`,
      )
      return undefined
    })
  machines
    .command('list')
    .description('List the machines you can access.')
    .option('--environment <id>', 'only this environment')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const query = o.environment
        ? `?environmentId=${id(await environmentOf(io, o.environment))}`
        : ''
      const { items } = await api().request<Items<Machine>>('GET', `/machines${query}`)
      const groups = o.json ? new Map<string, string>() : await groupNames()
      printTable(
        io,
        o,
        items.map((m) => machineRow(m, groups)),
        ['id', 'name', 'status', 'group', 'sessions', 'maintenance', 'access'],
        items,
      )
    })
  namedArguments(machines.command('show <machine>'), io, 'machine')
    .description('Show a machine: status, sessions, settings.')
    .option('--json', 'print JSON')
    .action(async (machineId, o) => {
      const m = await api().request<Machine>('GET', `/machines/${id(machineId)}`)
      if (o.json) return printObject(io, o, m)
      printObject(io, o, {
        ...machineRow(m, await groupNames()),
        hostname: m.hostname,
        os: m.os,
        agentVersion: m.agentVersion,
        lastHeartbeatAt: m.lastHeartbeatAt,
        settings: m.effectiveSettings,
      })
      return undefined
    })
  withSettings(
    namedArguments(machines.command('update <machine>'), io, 'machine').description(
      'Rename a machine or change its settings.',
    ),
  )
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--json', 'print JSON')
    .action(async (machineId, o) => {
      const body = { name: o.name, description: o.description, settings: settingsPatch(o) }
      printObject(
        io,
        o,
        machineRow(
          await namingFlags(
            SETTINGS_FLAGS,
            api().request<Machine>('PATCH', `/machines/${id(machineId)}`, body),
          ),
        ),
      )
    })
  namedArguments(machines.command('delete <machine>'), io, 'machine')
    .description('Delete a machine; its agent stops acting for it at once.')
    .option('--json', 'print JSON')
    .action(async (machineId, o) => {
      await api().request('DELETE', `/machines/${id(machineId)}`)
      printObject(io, o, { deleted: machineId })
    })
  registerShareVerbs(machines, io, {
    kind: 'machine',
    base: (m) => `/machines/${id(m)}`,
    accessHelp: MEMBER_ACCESS,
  })

  const groups = program
    .command('groups')
    .description('Machine groups: machines that share connections and settings.')
  groups
    .command('list')
    .description('List the machine groups you can access.')
    .option('--environment <id>', 'only this environment')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const query = o.environment
        ? `?environmentId=${id(await environmentOf(io, o.environment))}`
        : ''
      const { items } = await api().request<Items<MachineGroup>>('GET', `/machine-groups${query}`)
      printTable(
        io,
        o,
        items.map((g) => ({
          id: g.id,
          name: g.name,
          members: `${g.memberCount}/${g.maxMembers}`,
          key: g.publicKey ? 'yes' : 'not yet',
          access: g.access,
        })),
        ['id', 'name', 'members', 'key', 'access'],
        items,
      )
    })
  withSettings(
    groups
      .command('create <name>')
      .description('Create a machine group; machines join it with `desklink agent join-group`.'),
  )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--description <text>', 'description', '')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      const body = {
        environmentId: await environmentOf(io, o.environment),
        name,
        description: o.description,
        settings: settingsPatch(o),
      }
      printObject(
        io,
        o,
        await namingFlags(
          { ...SETTINGS_FLAGS, name: 'the name' },
          api().request<MachineGroup>('POST', '/machine-groups', body),
        ),
      )
    })
  namedArguments(groups.command('show <group>'), io, 'group')
    .description('Show a machine group.')
    .option('--json', 'print JSON')
    .action(async (groupId, o) =>
      printObject(
        io,
        o,
        await api().request<MachineGroup>('GET', `/machine-groups/${id(groupId)}`),
      ),
    )
  withSettings(
    namedArguments(groups.command('update <group>'), io, 'group').description(
      'Rename a group or change the settings its machines inherit.',
    ),
  )
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--json', 'print JSON')
    .action(async (groupId, o) => {
      const body = { name: o.name, description: o.description, settings: settingsPatch(o) }
      printObject(
        io,
        o,
        await namingFlags(
          SETTINGS_FLAGS,
          api().request<MachineGroup>('PATCH', `/machine-groups/${id(groupId)}`, body),
        ),
      )
    })
  namedArguments(groups.command('delete <group>'), io, 'group')
    .description('Delete a group; its machines return to their own groups.')
    .option('--json', 'print JSON')
    .action(async (groupId, o) => {
      await api().request('DELETE', `/machine-groups/${id(groupId)}`)
      printObject(io, o, { deleted: groupId })
    })
  namedArguments(groups.command('members <group>'), io, 'group')
    .description('List the machines of a group.')
    .option('--json', 'print JSON')
    .action(async (groupId, o) => {
      const { items } = await api().request<Items<Machine>>(
        'GET',
        `/machine-groups/${id(groupId)}/members`,
      )
      printTable(
        io,
        o,
        items.map((m) => machineRow(m)),
        ['id', 'name', 'status', 'sessions'],
        items,
      )
    })
  namedArguments(groups.command('remove-member <group> <machine>'), io, 'group', 'machine')
    .description('Remove a machine from a group.')
    .option('--json', 'print JSON')
    .action(async (groupId, machineId, o) => {
      await api().request('DELETE', `/machine-groups/${id(groupId)}/members/${id(machineId)}`)
      printObject(io, o, { removed: machineId })
    })
  registerShareVerbs(groups, io, {
    kind: 'group',
    base: (g) => `/machine-groups/${id(g)}`,
    accessHelp: MEMBER_ACCESS,
  })
}
