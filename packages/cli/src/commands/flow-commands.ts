/**
 * `desklink flows …`: desktop flow packages, their versions and their sharing.
 *
 * A package is a folder with `desklink-flow.json` (the manifest) and the files it needs; every
 * other file in the folder goes into the package, executables stay executable.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, sep } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import type { DesktopFlow, PushedFlow } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { ENVIRONMENT_HELP, environmentOf } from './environment-option.ts'
import { namedArguments } from './names.ts'
import { registerShareVerbs } from './share-verbs.ts'

export const MANIFEST_FILE = 'desklink-flow.json'
const id = (value: string) => encodeURIComponent(value)

/** Reads a package folder: the manifest and every other file, in path order. */
export function readPackage(dir: string): { manifest: unknown; files: unknown[] } {
  const manifestPath = join(dir, MANIFEST_FILE)
  let manifest: unknown
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
  } catch (cause) {
    throw new CliError(
      'InvalidManifest',
      `Cannot read ${manifestPath}: ${(cause as Error).message}. A flow folder needs a ${MANIFEST_FILE}.`,
      { exitCode: 2 },
    )
  }
  const files: { path: string; executable: boolean; contentBase64: string }[] = []
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name)
      const stat = statSync(path)
      if (stat.isDirectory()) walk(path)
      else if (stat.isFile() && path !== manifestPath)
        files.push({
          path: relative(dir, path).split(sep).join('/'),
          executable: (stat.mode & 0o100) !== 0,
          contentBase64: readFileSync(path).toString('base64'),
        })
    }
  }
  walk(dir)
  const entry = (manifest as { entry?: unknown } | null)?.entry
  if (typeof entry === 'string' && !files.some((file) => file.path === entry))
    throw new CliError(
      'InvalidManifest',
      `The manifest's entry '${entry}' is not in ${dir}: add the file, or name the right one.`,
      { exitCode: 2 },
    )
  return { manifest, files }
}

/** What a push did, for people. */
const PUSHED: Record<PushedFlow['pushed'], string> = {
  created: 'a new flow',
  newVersion: 'a new version',
  unchanged: 'unchanged: the current version already has this content',
}

export function registerFlowCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)
  const flows = program
    .command('flows')
    .description('Desktop flow packages: a manifest and its files, versioned by content hash.')

  flows
    .command('push <dir>')
    .description(
      `Push the flow in a folder (${MANIFEST_FILE} plus its files): a new flow, or a new ` +
        'version of the flow of that name. The same content again changes nothing.',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (dir, o) => {
      const body = readPackage(resolve(io.cwd, dir))
      const flow = await api().request<PushedFlow>(
        'POST',
        `/environments/${id(await environmentOf(io, o.environment))}/desktop-flows`,
        body,
      )
      printObject(
        io,
        o,
        o.json
          ? flow
          : {
              id: flow.id,
              name: flow.name,
              version: flow.version,
              contentHash: flow.contentHash,
              pushed: PUSHED[flow.pushed],
            },
      )
    })

  flows
    .command('list')
    .description('List the desktop flows you can see in an environment.')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<{ items: DesktopFlow[] }>(
        'GET',
        `/environments/${id(await environmentOf(io, o.environment))}/desktop-flows`,
      )
      printTable(
        io,
        o,
        items.map((f) => ({
          id: f.id,
          name: f.name,
          version: f.version,
          runtime: f.runtime,
          access: f.access,
        })),
        ['id', 'name', 'version', 'runtime', 'access'],
        items,
      )
    })

  namedArguments(flows.command('show <flow>'), io, 'flow')
    .description('Show a desktop flow (id or name): its version, runtime, inputs and outputs.')
    .option('--json', 'print JSON')
    .action(async (flowId, o) => {
      const f = await api().request<DesktopFlow>('GET', `/desktop-flows/${id(flowId)}`)
      // name:type, ! when required, its default (a sensitive one is not shown).
      const param = (p: (typeof f.manifest.inputs)[number]) => {
        const given =
          p.default === undefined ? '' : p.sensitive ? ' = ***' : ` = ${JSON.stringify(p.default)}`
        return `${p.name}:${p.type}${p.required ? '!' : ''}${given}${p.sensitive ? ' (sensitive)' : ''}`
      }
      printObject(
        io,
        o,
        o.json
          ? f
          : {
              id: f.id,
              name: f.name,
              version: f.version,
              runtime: f.runtime,
              entry: f.manifest.entry,
              timeout:
                f.manifest.timeoutSeconds === undefined
                  ? "the environment's default"
                  : `${f.manifest.timeoutSeconds} s`,
              ...(f.manifest.needsDisplay && { needsDisplay: 'yes' }),
              inputs: f.manifest.inputs.map(param).join(', '),
              outputs: f.manifest.outputs.map(param).join(', '),
              contentHash: f.contentHash,
            },
      )
    })

  namedArguments(flows.command('delete <flow>'), io, 'flow')
    .description('Delete a desktop flow (id or name) and all its versions.')
    .option('--json', 'print JSON')
    .action(async (flowId, o) => {
      await api().request('DELETE', `/desktop-flows/${id(flowId)}`)
      printObject(io, o, { deleted: flowId })
    })

  registerShareVerbs(flows, io, {
    kind: 'flow',
    base: (flowId) => `/desktop-flows/${id(flowId)}`,
    accessHelp: 'co-owner (run, edit, share, delete) or user (run only)',
  })
}
