/**
 * Run inputs checked against the flow's manifest: no unknown names, required ones present
 * (or defaulted), each of its declared type, at most 2 MB in all. Sensitive values are kept
 * for the machine only; what is shown replaces them with "***".
 *
 * @module
 */
import { checkFlowValues, type FlowManifest, MAX_RUN_INPUT_BYTES } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'

export const MASK = '***'

export interface CheckedInputs {
  /** What the flow receives. */
  readonly values: Record<string, unknown>
  /** What people see: sensitive values masked. */
  readonly shown: Record<string, unknown>
}

export function checkInputs(
  manifest: FlowManifest,
  given: Record<string, unknown>,
  /** The environment's limit (`maxRunInputBytes`), 2 MB at most. */
  maxBytes = MAX_RUN_INPUT_BYTES,
): CheckedInputs {
  const tooLarge = (values: Record<string, unknown>) => {
    const size = Buffer.byteLength(JSON.stringify(values))
    if (size > maxBytes)
      throw new AppError('PayloadTooLarge', {
        message: `The run inputs, the flow's defaults included, are larger than the limit of ${maxBytes} bytes.`,
        details: { sizeBytes: size, maxBytes },
      })
  }
  tooLarge(given)
  const checked = checkFlowValues(manifest.inputs, given)
  const problems = [
    ...checked.undeclared.map((input) => ({ input, problem: 'not an input of this flow' })),
    ...checked.problems.map(({ name, problem }) => ({ input: name, problem })),
  ]
  if (problems.length > 0) throw new AppError('InvalidFlowInputs', { details: { problems } })
  const { values } = checked
  const shown: Record<string, unknown> = {}
  for (const parameter of manifest.inputs)
    if (Object.hasOwn(values, parameter.name))
      shown[parameter.name] = parameter.sensitive ? MASK : values[parameter.name]
  // Measured again with the defaults the flow added, when it added any.
  if (manifest.inputs.some((p) => !Object.hasOwn(given, p.name) && p.default !== undefined))
    tooLarge(values)
  return { values, shown }
}

/** Outputs as shown: only declared ones (others are dropped), sensitive ones masked. */
export function shownOutputs(
  manifest: FlowManifest,
  outputs: Record<string, unknown> | null,
): Record<string, unknown> | null {
  if (!outputs) return null
  const shown: Record<string, unknown> = {}
  for (const parameter of manifest.outputs) {
    if (Object.hasOwn(outputs, parameter.name))
      shown[parameter.name] = parameter.sensitive ? MASK : outputs[parameter.name]
  }
  return shown
}
