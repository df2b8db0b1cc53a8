/**
 * A run as people read it (`desklink run`, `runs show`, `cancel`, `move-to-top`,
 * `set-priority`): who started it, through which connection and for whom, where it ran, where it
 * stands or how it ended and what to do, and how long it took. `--json` prints the API's run.
 *
 * @module
 */
import {
  type Connection,
  ERROR_CODES,
  isErrorCode,
  type Machine,
  type MachineGroup,
  type MachineRefusal,
  type PrincipalType,
  type Run,
  RUN_CODES,
} from '@desklink/protocol'

import type { ApiClient } from '../client/api-client.ts'
import { type Named, principalLabel, principalPath, tryRead, withName } from './display-names.ts'

const id = (value: string) => encodeURIComponent(value)

/** One machine's reason not to take a run, as people read it. */
const machineReason = (m: MachineRefusal) => `${m.machineName}: ${m.reason} (${m.code})`

/** Why a queued run waits: the run at the head it waits behind, and each machine's reason. */
export function whyWaiting(waiting: NonNullable<Run['waiting']>): string {
  return [
    ...(waiting.blockedBy ? [`behind run ${waiting.blockedBy} (head of the queue)`] : []),
    ...waiting.machines.map(machineReason),
  ].join('; ')
}

/** What to do about the code a run ended with, when the code is one Desklink documents. */
export function remedyFor(code: string): string | undefined {
  if (Object.hasOwn(RUN_CODES, code)) return RUN_CODES[code as keyof typeof RUN_CODES].remediation
  return isErrorCode(code) ? ERROR_CODES[code].remediation : undefined
}

/** A failed run's error: its code and message, each machine's reason, and what to do. */
function errorSummary(error: NonNullable<Run['error']>): Record<string, string> {
  const subErrors = (error.details as { subErrors?: MachineRefusal[] } | undefined)?.subErrors
  const remedy = remedyFor(error.code)
  return {
    error: `${error.code}: ${error.message}`,
    ...(subErrors?.length && { machines: subErrors.map(machineReason).join('; ') }),
    ...(remedy && { whatToDo: remedy }),
  }
}

/**
 * How long the run took. The API gives the execution (start to end) and the total (request to
 * end, queue included); their difference is the time it waited in its queue.
 */
function durations(run: Run): Record<string, number> {
  const { executionDurationMs: executionMs, totalDurationMs: totalMs } = run
  return {
    ...(executionMs !== null && totalMs !== null && { queuedMs: totalMs - executionMs }),
    ...(executionMs !== null && { executionMs }),
    ...(totalMs !== null && { totalMs }),
  }
}

/** The names read for a run's ids; each one missing where the caller may not read it. */
interface RunNames {
  readonly caller?: string | undefined
  readonly connection?: string | undefined
  /** The connection owner's type: the run holds its id alone, the connection says which. */
  readonly connectionOwner?: { readonly type: PrincipalType; readonly name?: string } | undefined
  readonly runOwner?: string | undefined
  readonly targetGroup?: string | undefined
  readonly machine?: string | undefined
}

/** The run's fields for people, with the names given beside the ids (ids alone otherwise). */
function runSummary(run: Run, names: RunNames = {}): Record<string, unknown> {
  const owner = names.connectionOwner
  return {
    id: run.id,
    flow: `${run.flowName} (v${run.flowVersion})`,
    status: run.status,
    runMode: run.runMode,
    priority: run.movedToTopAt ? `${run.priority}, moved to top` : run.priority,
    caller: principalLabel(run.callerType, run.callerId, names.caller),
    connection: withName(run.connectionId, names.connection),
    connectionOwner: owner
      ? principalLabel(owner.type, run.connectionOwnerId, owner.name)
      : run.connectionOwnerId,
    runOwner: principalLabel(run.runOwnerType, run.runOwnerId, names.runOwner),
    targetGroup: withName(run.targetGroupId, names.targetGroup),
    ...(run.machineId && { machine: withName(run.machineId, names.machine) }),
    ...(run.machineCredentialUser && { machineCredentialUser: run.machineCredentialUser }),
    ...(run.parentRunId !== null && { parentRunId: run.parentRunId }),
    ...(Object.keys(run.inputs).length > 0 && { inputs: JSON.stringify(run.inputs) }),
    ...(run.outputs && { outputs: JSON.stringify(run.outputs) }),
    ...(run.exitCode !== null && { exitCode: run.exitCode }),
    ...(run.error && errorSummary(run.error)),
    ...(run.waiting && {
      position: run.waiting.position,
      waitingFor: whyWaiting(run.waiting),
    }),
    requestedAt: run.requestedAt,
    ...(run.startedAt !== null && { startedAt: run.startedAt }),
    ...(run.finishedAt !== null && { finishedAt: run.finishedAt }),
    ...durations(run),
    timeoutSeconds: run.timeoutSeconds,
  }
}

/**
 * The summary with the names people read beside the ids, where the caller may read them.
 * Reads each record once, all at once: the caller is often the run owner too.
 */
export async function namedSummary(client: ApiClient, run: Run): Promise<Record<string, unknown>> {
  const read = new Map<string, Promise<unknown>>()
  const once = <T>(path: string) => {
    if (!read.has(path)) read.set(path, tryRead<T>(client, path))
    return read.get(path) as Promise<T | undefined>
  }
  const nameAt = async (path: string) => {
    const found = await once<Named>(path)
    return found?.username ?? found?.name
  }
  const machineAt = (machineId: string) => once<Machine>(`/machines/${id(machineId)}`)
  /**
   * A machine's own group is not read as a group: it is named through its machine, the run's
   * when it has one, else found among the environment's machines.
   */
  const targetGroupName = async () => {
    const group = await once<MachineGroup>(`/machine-groups/${id(run.targetGroupId)}`)
    if (group) return group.name
    const ran = run.machineId ? await machineAt(run.machineId) : undefined
    const owner =
      ran?.standaloneGroupId === run.targetGroupId
        ? ran
        : (
            await once<{ items: Machine[] }>(`/machines?environmentId=${id(run.environmentId)}`)
          )?.items.find((m) => m.standaloneGroupId === run.targetGroupId)
    return owner && `machine ${owner.name}'s own group`
  }
  const [caller, connection, runOwner, targetGroup, machine] = await Promise.all([
    nameAt(principalPath(run.callerType, run.callerId)),
    once<Connection>(`/connections/${id(run.connectionId)}`),
    nameAt(principalPath(run.runOwnerType, run.runOwnerId)),
    targetGroupName(),
    run.machineId ? machineAt(run.machineId) : undefined,
  ])
  // The connection's owner now; the run's is the one it had, shown by id when they differ.
  const ownerType = connection?.ownerId === run.connectionOwnerId ? connection.ownerType : undefined
  return runSummary(run, {
    caller,
    connection: connection?.name,
    connectionOwner: ownerType && {
      type: ownerType,
      name: await nameAt(principalPath(ownerType, run.connectionOwnerId)),
    },
    runOwner,
    targetGroup,
    machine: machine?.name,
  })
}
