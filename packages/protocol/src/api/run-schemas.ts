/**
 * The Run desktop flow action and its runs: request, status, queue position and the reason a
 * queued run is still waiting, per machine.
 *
 * @module
 */
import { z } from 'zod'

import {
  DEFAULT_RUN_TIMEOUT_SECONDS,
  MAX_RUN_INPUT_BYTES,
  MAX_RUN_TIMEOUT_SECONDS,
} from './flow-schemas.ts'
import { Id, PrincipalType } from './identity-schemas.ts'

export const RunMode = z.enum(['attended', 'unattended'])
export type RunMode = z.infer<typeof RunMode>
export const RunPriority = z.enum(['high', 'normal', 'low'])
export type RunPriority = z.infer<typeof RunPriority>
export const RunStatus = z.enum(['Queued', 'Running', 'Succeeded', 'Failed', 'Cancelled'])
export type RunStatus = z.infer<typeof RunStatus>

export const CreateRunRequest = z.strictObject({
  connectionId: Id,
  runMode: RunMode.default('unattended'),
  priority: RunPriority.default('normal'),
  inputs: z.record(z.string(), z.unknown()).default({}),
  timeoutSeconds: z.int().min(1).max(MAX_RUN_TIMEOUT_SECONDS).optional(),
  /** Called (HTTPS POST, the run as body) when the run ends; three tries on 5xx or 408. */
  callbackUrl: z
    .url({ protocol: /^https$/, error: 'must be an https:// URL' })
    .max(2048)
    .optional(),
  /** Synchronous mode (the reference's AsyncDisabled): the request waits for the end. */
  wait: z.boolean().default(false),
  /** A retried request with the same key returns the same run. */
  idempotencyKey: z.string().min(1).max(200).optional(),
  /** An outside workflow run id, for grouping and cancel-parent. */
  parentRunId: z.string().min(1).max(200).optional(),
})
export type CreateRunRequest = z.infer<typeof CreateRunRequest>
export { DEFAULT_RUN_TIMEOUT_SECONDS }

export const RunError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
})

/** Why one machine of the target does not take a queued run now. */
export const MachineRefusal = z.object({
  machineId: Id,
  machineName: z.string(),
  code: z.string(),
  reason: z.string(),
})
export type MachineRefusal = z.infer<typeof MachineRefusal>

export const RunEvent = z.object({
  at: z.iso.datetime(),
  kind: z.string(),
  details: z.unknown().optional(),
})

export const Run = z.object({
  id: Id,
  environmentId: Id,
  flowId: Id,
  flowName: z.string(),
  flowVersion: z.int(),
  connectionId: Id,
  targetGroupId: Id,
  status: RunStatus,
  runMode: RunMode,
  priority: RunPriority,
  callerType: PrincipalType,
  callerId: Id,
  connectionOwnerId: Id,
  runOwnerType: PrincipalType,
  runOwnerId: Id,
  machineId: Id.nullable(),
  /** The OS account the flow ran as (machine credential user). */
  machineCredentialUser: z.string().nullable(),
  /** Sensitive inputs and outputs show as `"***"`. */
  inputs: z.record(z.string(), z.unknown()),
  outputs: z.record(z.string(), z.unknown()).nullable(),
  exitCode: z.int().nullable(),
  error: RunError.nullable(),
  timeoutSeconds: z.int(),
  parentRunId: z.string().nullable(),
  requestedAt: z.iso.datetime(),
  movedToTopAt: z.iso.datetime().nullable(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
  /** From request to end, queue included. */
  totalDurationMs: z.int().nullable(),
  executionDurationMs: z.int().nullable(),
  /** While queued: 1-based position in the target's queue and why each machine waits. */
  waiting: z
    .object({
      position: z.int(),
      machines: z.array(MachineRefusal),
      /** The run at the head of the queue this one waits behind, when no machine looked at it yet. */
      blockedBy: Id.nullable(),
    })
    .nullable(),
  events: z.array(RunEvent),
})
export type Run = z.infer<typeof Run>

export const UpdateRunRequest = z.strictObject({
  priority: RunPriority.optional(),
  /** true: move to the top of the queue; false: undo a move to top. */
  movedToTop: z.boolean().optional(),
})

export const CancelParentRequest = z.strictObject({ parentRunId: z.string().min(1).max(200) })

/** Run limits of an environment, with the reference's defaults. */
export const RunSettings = z.strictObject({
  /** Most queued runs per machine or group (`UIFlowRunQueueFull`). */
  maxQueuedRuns: z.int().min(1).max(100_000),
  /** Most runs requested per minute through one connection (`DesktopFlowsActionThrottled`). */
  runsPerMinutePerConnection: z.int().min(1).max(100_000),
  /** How long a run may wait in the queue (`NoCandidateMachine`). */
  queueTimeoutSeconds: z
    .int()
    .min(1)
    .max(7 * 24 * 3600),
  /** The same, for connect-with-sign-in connections. */
  signInQueueTimeoutSeconds: z
    .int()
    .min(1)
    .max(24 * 3600),
  /** Largest run inputs (their JSON), bytes: 2 MB at most, what an offer carries. */
  maxRunInputBytes: z.int().min(1024).max(MAX_RUN_INPUT_BYTES),
  /** Longest timeout a run may have, seconds (24 h at most): a flow's longer one is cut to it. */
  maxRunTimeoutSeconds: z.int().min(60).max(MAX_RUN_TIMEOUT_SECONDS),
  /** The timeout of a run whose request and flow name none (cut to the longest). */
  defaultRunTimeoutSeconds: z.int().min(60).max(MAX_RUN_TIMEOUT_SECONDS),
  /**
   * How long the events of a run that ended are kept, counted from its request (the
   * reference's `desktopFlowQueueLogsTtlMinutes`): an hour at least, a year at most.
   */
  queueEventsTtlMinutes: z
    .int()
    .min(60)
    .max(365 * 24 * 60),
})
export type RunSettings = z.infer<typeof RunSettings>

export const RUN_SETTINGS_DEFAULTS: RunSettings = {
  maxQueuedRuns: 500,
  runsPerMinutePerConnection: 70,
  queueTimeoutSeconds: 6 * 3600,
  signInQueueTimeoutSeconds: 3600,
  maxRunInputBytes: MAX_RUN_INPUT_BYTES,
  maxRunTimeoutSeconds: MAX_RUN_TIMEOUT_SECONDS,
  defaultRunTimeoutSeconds: DEFAULT_RUN_TIMEOUT_SECONDS,
  queueEventsTtlMinutes: 7 * 24 * 60,
}

export const UpdateRunSettingsRequest = RunSettings.partial()
