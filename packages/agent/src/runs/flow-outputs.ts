/**
 * A flow's outputs: read back from the JSON file it wrote (`DESKLINK_OUTPUTS`), checked against
 * the outputs its manifest declares by the rules the server checks a run's inputs with
 * (`checkFlowValues`), and made fit to leave the machine.
 *
 * - A flow that exits 0 with a required output missing, or one not of its declared type,
 *   fails with `InvalidFlowOutputs`, naming the output (never its value).
 * - Outputs the manifest does not declare are dropped: a run's inputs never carry a name the
 *   manifest does not declare (the server refuses it), nor do its outputs leave the machine
 *   with one (the server would not show it either).
 * - Sensitive outputs are `***` and never leave the machine; in the others every sensitive
 *   value (sensitive inputs and outputs, the connection's password) is masked, as in stderr.
 *
 * @module
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readSync } from 'node:fs'

import { checkFlowValues, type FlowParameter } from '@desklink/protocol'

import { MASK, maskValue, secretForms } from './secret-masking.ts'

/** The largest outputs file read back: 1 MiB. */
export const OUTPUTS_LIMIT_BYTES = 1024 * 1024

/**
 * Reads the outputs file the flow wrote, refusing anything but a regular file of the account
 * of at most 1 MiB holding one JSON object; null when the flow wrote none.
 */
export function readOutputs(file: string, uid: number): Record<string, unknown> | null {
  if (!existsSync(file)) return null
  // Non-blocking: a FIFO planted by the flow must not hang the agent before the isFile check.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile() || stat.uid !== uid)
      throw new Error('the outputs file is not a regular file of the run account')
    if (stat.size > OUTPUTS_LIMIT_BYTES)
      throw new Error(
        `the outputs file is larger than 1 MiB (${OUTPUTS_LIMIT_BYTES} bytes): ${stat.size} bytes`,
      )
    const buffer = Buffer.alloc(stat.size)
    readSync(fd, buffer, 0, stat.size, 0)
    let parsed: unknown
    try {
      parsed = JSON.parse(buffer.toString('utf8'))
    } catch {
      // Not the parser's message: it quotes the file, which may hold sensitive outputs.
      throw new Error('the outputs file is not valid JSON')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('the outputs file must hold a JSON object')
    return parsed as Record<string, unknown>
  } finally {
    closeSync(fd)
  }
}

export interface SettledOutputs {
  /** What the run reports: declared outputs only, masked; null when the flow wrote none. */
  readonly outputs: Record<string, unknown> | null
  /** What is wrong with them for a flow that succeeded, for people; undefined when nothing. */
  readonly problem: string | undefined
  /** Every form of the sensitive outputs' values, to be masked in stderr too. */
  readonly secrets: readonly string[]
}

/**
 * The outputs `written` settled against the manifest's `declared` ones (module header).
 *
 * @example
 * ```ts
 * const settled = settleOutputs(readOutputs(file, uid), manifest.outputs, { sensitive, secrets })
 * if (exitCode === 0 && settled.problem) fail('InvalidFlowOutputs', settled.problem)
 * ```
 */
export function settleOutputs(
  written: Record<string, unknown> | null,
  declared: readonly FlowParameter[],
  options: {
    /** Names of sensitive outputs (and inputs). */
    readonly sensitive: readonly string[]
    /** Sensitive values of the run besides its outputs: its inputs', its password. */
    readonly secrets: readonly string[]
  },
): SettledOutputs {
  const given = written ?? {}
  const isSensitive = (name: string) => options.sensitive.includes(name)
  const secrets = Object.keys(given)
    .filter(isSensitive)
    .flatMap((name) => secretForms(given[name]))
  const { values, problems } = checkFlowValues(declared, given)
  const problem =
    problems.length === 0
      ? undefined
      : `The flow's outputs do not match its manifest: ${problems
          .map(
            ({ name, problem }) => `'${name}' ${problem === 'required' ? 'is required' : problem}`,
          )
          .join('; ')}.`
  const everySecret = [...options.secrets, ...secrets]
  const outputs = Object.fromEntries(
    Object.entries(values).map(([name, value]) => [
      name,
      isSensitive(name) ? MASK : maskValue(value, everySecret),
    ]),
  )
  return {
    outputs: written === null && Object.keys(outputs).length === 0 ? null : outputs,
    problem,
    secrets,
  }
}
