/**
 * `desklink run` (the Run desktop flow action) and `desklink runs …`: a run's status and why it
 * waits, its place in the queue (priority, move to top and its undo), cancel (one run, or every
 * run of an outside parent run), and an environment's run limits. How a run reads for people is
 * in `run-summary.ts`, how `desklink run` waits in `run-waiting.ts`, its inputs in
 * `run-inputs.ts`.
 *
 * @module
 */
import { type Command, Option } from '@commander-js/extra-typings'
import {
  type Connection,
  type DesktopFlow,
  type Run,
  RunMode,
  RunPriority,
  type RunSettings,
  RunStatus,
} from '@desklink/protocol'

import { type ApiClient, apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo, namingFlags } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { tryRead } from './display-names.ts'
import { ENVIRONMENT_HELP, environmentOf, isId } from './environment-option.ts'
import { idOf } from './names.ts'
import { oneOf, wholeNumber } from './option-values.ts'
import { inputsFrom, typedInputs } from './run-inputs.ts'
import { namedSummary, remedyFor } from './run-summary.ts'
import { ENDED, waitForEnd } from './run-waiting.ts'

const id = (value: string) => encodeURIComponent(value)

/** A run status as the API spells it, whatever the case it was typed in. */
function statusOf(value: string): string {
  const status = RunStatus.options.find((s) => s.toLowerCase() === value.toLowerCase())
  return status ?? oneOf('--status', value, RunStatus.options)
}

/**
 * The run mode a connection takes when `--mode` is not given: a sign-in connection runs
 * attended only (an unattended run through it is refused), any other unattended. A connection
 * the caller may not read gets the server's default, and the run request's own refusal.
 */
async function defaultModeFor(client: ApiClient, connectionId: string): Promise<RunMode> {
  const connection = await tryRead<Connection>(client, `/connections/${id(connectionId)}`)
  return connection?.type === 'signIn' ? 'attended' : 'unattended'
}

/**
 * The `--input` values typed as the flow declares its inputs. A flow the caller may not read
 * declares nothing here: its values go as given, and the run request says what is wrong.
 */
async function inputsFor(
  client: ApiClient,
  flowId: string,
  pairs: readonly string[],
): Promise<Record<string, unknown>> {
  if (pairs.length === 0) return {}
  const flow = await tryRead<DesktopFlow>(client, `/desktop-flows/${id(flowId)}`)
  return typedInputs(pairs, flow?.manifest.inputs ?? [])
}

const PRIORITIES = RunPriority.options
const RUN_MODES = RunMode.options

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** The run limits `runs settings` changes: its option, the setting, and what it is. */
const RUN_LIMITS: readonly (readonly [string, keyof RunSettings, string])[] = [
  [
    '--max-queued-runs <n>',
    'maxQueuedRuns',
    'most queued runs per machine or group (UIFlowRunQueueFull)',
  ],
  [
    '--runs-per-minute <n>',
    'runsPerMinutePerConnection',
    'most runs requested per minute through one connection (DesktopFlowsActionThrottled)',
  ],
  ['--queue-timeout <seconds>', 'queueTimeoutSeconds', 'how long a run may wait in its queue'],
  [
    '--sign-in-queue-timeout <seconds>',
    'signInQueueTimeoutSeconds',
    'the same, for connect-with-sign-in connections',
  ],
  ['--max-input-bytes <n>', 'maxRunInputBytes', 'largest run inputs, bytes (2 MB at most)'],
  ['--max-run-timeout <seconds>', 'maxRunTimeoutSeconds', 'longest run timeout (24 h at most)'],
  [
    '--default-run-timeout <seconds>',
    'defaultRunTimeoutSeconds',
    'timeout of a run whose request and flow give none (3 h by default)',
  ],
  [
    '--queue-events-ttl <minutes>',
    'queueEventsTtlMinutes',
    'how long the events of a run that ended are kept, from its request (7 days by default)',
  ],
]

/** The options of `desklink run` that set each field of its request. */
const RUN_FLAGS = {
  connectionId: '--connection',
  runMode: '--mode',
  priority: '--priority',
  inputs: '--input or --inputs-file',
  timeoutSeconds: '--timeout',
  idempotencyKey: '--idempotency-key',
  parentRunId: '--parent-run-id',
  callbackUrl: '--callback-url',
}

/** The options of `desklink runs settings`, by the setting each changes. */
const SETTING_FLAGS = Object.fromEntries(
  RUN_LIMITS.map(([flags, setting]) => [setting, new Option(flags).long ?? flags]),
)

export function registerRunCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)
  program
    .command('run <flow>')
    .description(
      'Run a desktop flow (id or name) through a connection (id or name) and wait for the end ' +
        '(--no-wait: print the queued run and return). While it waits, it says on standard ' +
        'error why a queued run is not running yet, with --json too. Prints the outputs, the ' +
        'caller, the connection and its owner, the run owner and the machine credential user.',
    )
    .requiredOption('--connection <id|name>', 'the connection to run through')
    .option('--environment <id>', `where to look up names: ${ENVIRONMENT_HELP}`)
    .option(
      '--input <name=value>',
      'an input (repeat for more), of the type the flow declares for it: text as given, ' +
        'number, boolean (true or false), json (parsed)',
      collect,
      [] as string[],
    )
    .option(
      '--inputs-file <path>',
      'inputs as one JSON object, from a file, or - for standard input: keeps sensitive values ' +
        'off the command line and out of shell history (--input adds to it and wins)',
    )
    .option(
      '--mode <mode>',
      'attended or unattended (default: attended through a sign-in connection, which takes ' +
        'nothing else; unattended through any other)',
    )
    .option('--priority <priority>', 'high, normal or low', 'normal')
    .option('--timeout <seconds>', 'run timeout (default: the flow’s, else the environment’s)')
    .option('--idempotency-key <key>', 'a retry with the same key returns the same run')
    .option('--parent-run-id <id>', 'an outside workflow run this run belongs to')
    .option('--callback-url <url>', 'an HTTPS URL the server posts the run to once it ended')
    .option('--no-wait', 'return once the run is queued')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nWhile it waits, losing the server (a restart, the network) is tried through for up ' +
        'to 30 s; the run goes on on the server either way.\n' +
        '\nExit status: 0 when the run succeeded (with --no-wait: when it was queued); 1 when it ' +
        'failed or was cancelled (its error code is printed), the request was refused, or the ' +
        'server stayed out of reach; 2 for a usage or configuration error.',
    )
    .action(async (flow, o) => {
      const givenMode =
        o.mode === undefined ? undefined : oneOf('--mode', o.mode.toLowerCase(), RUN_MODES)
      const priority = oneOf('--priority', o.priority.toLowerCase(), PRIORITIES)
      const client = api()
      // Names are looked up in one environment, found once.
      const environment = [flow, o.connection].every(isId)
        ? o.environment
        : await environmentOf(io, o.environment)
      const flowId = await idOf(io, 'flow', flow, environment)
      const connectionId = await idOf(io, 'connection', o.connection, environment)
      const [runMode, typed] = await Promise.all([
        givenMode ?? defaultModeFor(client, connectionId),
        inputsFor(client, flowId, o.input),
      ])
      const inputs = {
        ...(o.inputsFile && (await inputsFrom(io, o.inputsFile))),
        ...typed,
      }
      const answer = await namingFlags(
        RUN_FLAGS,
        client.send<Run>('POST', `/desktop-flows/${id(flowId)}/runs`, {
          connectionId,
          runMode,
          priority,
          inputs,
          // Given empty, still sent: the server says what is wrong, rather than it going unseen.
          ...(o.timeout !== undefined && {
            timeoutSeconds: wholeNumber('--timeout', o.timeout, 1),
          }),
          ...(o.idempotencyKey !== undefined && { idempotencyKey: o.idempotencyKey }),
          ...(o.parentRunId !== undefined && { parentRunId: o.parentRunId }),
          ...(o.callbackUrl !== undefined && { callbackUrl: o.callbackUrl }),
        }),
      )
      // 200 rather than 202: the key was used before, and this is the run that request started.
      // On stderr with --json too: stdout stays the run, and a person watching learns no new
      // run started.
      if (answer.status === 200)
        io.err(
          `Run ${answer.body.id} was started by an earlier request with this idempotency key; ` +
            'this is that run, not a new one.\n',
        )
      if (!o.wait) {
        const queued = answer.body
        printObject(io, o, o.json ? queued : await namedSummary(client, queued))
        if (!o.json && !ENDED.has(queued.status))
          io.err(`Follow it with: desklink runs show ${queued.id}\n`)
        return
      }
      const run = await waitForEnd(io, client, answer.body)
      printObject(io, o, o.json ? run : await namedSummary(client, run))
      if (run.status === 'Failed' || run.status === 'Cancelled') {
        const code = run.error?.code ?? run.status
        // People have each machine's reason and what to do in the summary just printed.
        if (!o.json)
          throw new CliError(
            code,
            `Run ${run.id} ${run.status.toLowerCase()}: the summary says why and what to do ` +
              `(again: desklink runs show ${run.id}).`,
          )
        // The fix travels with the error, for scripts that read --json.
        const remedy = run.error && remedyFor(run.error.code)
        const message = run.error?.message ?? run.status
        throw new CliError(code, remedy ? `${message} ${remedy}` : message, {
          details: run.error?.details,
        })
      }
    })

  const runs = program
    .command('runs')
    .description('Desktop flow runs: status, why they wait, their place in the queue, cancel.')
  runs
    .command('show <runId>')
    .description('Show a run; while it is queued, its position and why each machine waits.')
    .option('--json', 'print JSON')
    .action(async (runId, o) => {
      const client = api()
      const run = await client.request<Run>('GET', `/runs/${id(runId)}`).catch((error: unknown) => {
        if (!(error instanceof CliError) || error.code !== 'ResourceNotFound') throw error
        throw new CliError(
          'ResourceNotFound',
          `No run ${runId} that you may see. \`desklink runs list\` lists the runs you may see.`,
          { exitCode: error.exitCode, requestId: error.requestId },
        )
      })
      printObject(io, o, o.json ? run : await namedSummary(client, run))
      if (o.json) return
      // Its history, as the portal's run details show it.
      io.out('events:\n')
      for (const event of run.events)
        io.out(
          `  ${event.at}  ${event.kind}${event.details ? `  ${JSON.stringify(event.details)}` : ''}\n`,
        )
    })
  runs
    .command('list')
    .description(
      'List runs of an environment you may see (yours, your connections’, your machines’; all for administrators).',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--status <status>', 'Queued, Running, Succeeded, Failed or Cancelled')
    .option('--parent-run-id <id>', 'only the runs requested with this parent run id')
    .option('--flow <id|name>', 'only the runs of this flow')
    .option('--connection <id|name>', 'only the runs through this connection')
    .option('--limit <n>', 'the newest n runs (500 at most, the default)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const environment = await environmentOf(io, o.environment)
      const filters = new URLSearchParams({
        ...(o.status && { status: statusOf(o.status) }),
        ...(o.parentRunId && { parentRunId: o.parentRunId }),
        ...(o.flow && { flowId: await idOf(io, 'flow', o.flow, environment) }),
        ...(o.connection && {
          connectionId: await idOf(io, 'connection', o.connection, environment),
        }),
        ...(o.limit && { limit: String(wholeNumber('--limit', o.limit, 1)) }),
      }).toString()
      const query = filters ? `?${filters}` : ''
      const { items } = await api().request<{ items: Run[] }>(
        'GET',
        `/environments/${id(environment)}/runs${query}`,
      )
      printTable(
        io,
        o,
        // The queue at a glance: each queued run's place and priority beside its status.
        items.map((r) => ({
          id: r.id,
          flow: r.flowName,
          status: r.status,
          position: r.waiting ? String(r.waiting.position) : '',
          priority: r.movedToTopAt ? `${r.priority}, top` : r.priority,
          machineCredentialUser: r.machineCredentialUser ?? '',
          requestedAt: r.requestedAt,
        })),
        ['id', 'flow', 'status', 'position', 'priority', 'machineCredentialUser', 'requestedAt'],
        items,
      )
    })
  runs
    .command('cancel <runId>')
    .description('Cancel a queued or running run.')
    .option('--json', 'print JSON')
    .action(async (runId, o) => {
      const client = api()
      const run = await client.request<Run>('POST', `/runs/${id(runId)}/cancel`)
      printObject(io, o, o.json ? run : await namedSummary(client, run))
    })
  runs
    .command('cancel-parent <parentRunId>')
    .description('Cancel every queued or running run requested with this parent run id.')
    .option('--environment <id>', ENVIRONMENT_HELP)
    .option('--json', 'print JSON')
    .action(async (parentRunId, o) => {
      const answer = await api().request<{ cancelled: number; runIds: string[] }>(
        'POST',
        `/environments/${id(await environmentOf(io, o.environment))}/runs/cancel-parent`,
        { parentRunId },
      )
      if (o.json) return printObject(io, o, answer)
      if (answer.cancelled === 0)
        io.err(
          `No queued or running run of parent '${parentRunId}' that you may cancel. ` +
            `\`desklink runs list --parent-run-id ${parentRunId}\` lists its runs.\n`,
        )
      printObject(io, o, { cancelled: answer.cancelled, runIds: answer.runIds.join(', ') })
    })
  runs
    .command('move-to-top <runId>')
    .description(
      'Put a queued run at the top of its queue, ahead of every priority (the most recent move ' +
        'first); --undo gives it back its place.',
    )
    .option('--undo', 'undo the move to top')
    .option('--json', 'print JSON')
    .action(async (runId, o) => {
      const client = api()
      const run = await client.request<Run>('PATCH', `/runs/${id(runId)}`, {
        movedToTop: o.undo !== true,
      })
      printObject(io, o, o.json ? run : await namedSummary(client, run))
    })
  runs
    .command('set-priority <runId> <priority>')
    .description('Change a queued run’s priority: high, normal or low.')
    .option('--json', 'print JSON')
    .action(async (runId, priority, o) => {
      const client = api()
      const run = await client.request<Run>('PATCH', `/runs/${id(runId)}`, {
        priority: oneOf('priority', priority.toLowerCase(), PRIORITIES),
      })
      printObject(io, o, o.json ? run : await namedSummary(client, run))
    })
  const settings = runs
    .command('settings')
    .description(
      'Show an environment’s run limits, or change those given (environment administrators).',
    )
    .option('--environment <id>', ENVIRONMENT_HELP)
  for (const [flags, , help] of RUN_LIMITS) settings.option(flags, help)
  settings.option('--json', 'print JSON').action(async (o) => {
    const given = o as Record<string, string | undefined>
    const changes = Object.fromEntries(
      RUN_LIMITS.flatMap(([flags, setting]) => {
        const option = new Option(flags)
        const value = given[option.attributeName()]
        return value === undefined ? [] : [[setting, wholeNumber(option.long ?? flags, value)]]
      }),
    )
    const path = `/environments/${id(await environmentOf(io, o.environment))}/run-settings`
    const current =
      Object.keys(changes).length === 0
        ? await api().request<RunSettings>('GET', path)
        : await namingFlags(SETTING_FLAGS, api().request<RunSettings>('PATCH', path, changes))
    printObject(io, o, current)
  })
}
