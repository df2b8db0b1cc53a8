/**
 * A request retried with an idempotency key answers with the run the key first made, but only
 * when it asks for the same run: a key used again for another flow, connection or inputs is a
 * mistake of the caller's (two jobs sharing a key, say), and answering with the first run would
 * silently lose the second request.
 *
 * What the caller said is compared, not what the server made of it: the priority (which may
 * have been changed since) and a timeout left to the flow are not. Sensitive inputs are stored
 * sealed for the machine alone and cannot be compared; the others are compared as shown.
 *
 * @module
 */
import type { CreateRunRequest, FlowManifest } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'
import { checkInputs } from './flow-inputs.ts'
import type { RunRow } from './run-store.ts'

/** Throws `IdempotencyKeyReused` unless `request` asks for the run the key made. */
export async function assertSameRequest(
  run: RunRow,
  flowId: string,
  request: CreateRunRequest,
  manifestOf: () => Promise<FlowManifest | undefined>,
): Promise<void> {
  const differs: string[] = []
  if (run.flow_id !== flowId) differs.push('flowId')
  if (run.connection_id !== request.connectionId) differs.push('connectionId')
  if (run.run_mode !== request.runMode) differs.push('runMode')
  if ((run.parent_run_id ?? undefined) !== request.parentRunId) differs.push('parentRunId')
  if ((run.callback_url ?? undefined) !== request.callbackUrl) differs.push('callbackUrl')
  if (request.timeoutSeconds !== undefined && request.timeoutSeconds !== run.timeout_seconds)
    differs.push('timeoutSeconds')
  if (differs.length === 0 && !sameInputs(run, request.inputs, await manifestOf()))
    differs.push('inputs')
  if (differs.length > 0)
    throw new AppError('IdempotencyKeyReused', { details: { runId: run.id, differs } })
}

function sameInputs(
  run: RunRow,
  given: Record<string, unknown>,
  manifest: FlowManifest | undefined,
): boolean {
  if (!manifest) return false
  try {
    return JSON.stringify(checkInputs(manifest, given).shown) === run.shown_inputs
  } catch {
    // Inputs the run's flow refuses are not the ones it was made with.
    return false
  }
}
