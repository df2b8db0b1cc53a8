/**
 * Run inputs checked against the flow's manifest: no unknown names, required ones present
 * (or defaulted), each of its declared type, at most 2 MB in all. Sensitive values are kept
 * for the machine only; what is shown replaces them with "***".
 *
 * @module
 */
import { type FlowManifest, type FlowParameter, MAX_RUN_INPUT_BYTES } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'

export const MASK = '***'

const typeOk: Record<FlowParameter['type'], (v: unknown) => boolean> = {
  text: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
  json: () => true,
}

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
  const problems: { input: string; problem: string }[] = []
  const declared = new Map(manifest.inputs.map((p) => [p.name, p]))
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) problems.push({ input: name, problem: 'not an input of this flow' })
  }
  const values: Record<string, unknown> = {}
  const shown: Record<string, unknown> = {}
  for (const parameter of manifest.inputs) {
    const value = Object.hasOwn(given, parameter.name) ? given[parameter.name] : parameter.default
    if (value === undefined) {
      if (parameter.required) problems.push({ input: parameter.name, problem: 'required' })
      continue
    }
    if (!typeOk[parameter.type](value)) {
      problems.push({ input: parameter.name, problem: `must be of type ${parameter.type}` })
      continue
    }
    values[parameter.name] = value
    shown[parameter.name] = parameter.sensitive ? MASK : value
  }
  if (problems.length > 0) throw new AppError('InvalidFlowInputs', { details: { problems } })
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
