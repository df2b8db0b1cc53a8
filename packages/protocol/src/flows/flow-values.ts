/**
 * A flow's values checked against the parameters its manifest declares, by one set of rules
 * for the inputs a run is given (on the server) and the outputs a flow writes (on the machine):
 * a missing value takes the parameter's default, and is a problem when the parameter is
 * required and has none; a value is of its parameter's type. Names the manifest does not
 * declare are listed apart, for each side to treat its way: inputs refuse them, outputs drop
 * them.
 *
 * @module
 */
import type { FlowParameter } from '../api/flow-schemas.ts'

/** Whether a value is of a flow value type; `json` is any JSON value. */
export const FLOW_VALUE_TYPES: Readonly<
  Record<FlowParameter['type'], (value: unknown) => boolean>
> = {
  text: (value) => typeof value === 'string',
  number: (value) => typeof value === 'number' && Number.isFinite(value),
  boolean: (value) => typeof value === 'boolean',
  json: () => true,
}

export interface FlowValueProblem {
  /** The parameter's name. */
  readonly name: string
  /** What is wrong with its value: `required`, or `must be of type <type>`. */
  readonly problem: string
}

export interface CheckedFlowValues {
  /** The declared values that passed, defaults included. */
  readonly values: Record<string, unknown>
  readonly problems: readonly FlowValueProblem[]
  /** Names given that the manifest does not declare, in the order given. */
  readonly undeclared: readonly string[]
}

/**
 * Checks `given` against `parameters`.
 *
 * @example
 * ```ts
 * const { values, problems } = checkFlowValues(manifest.outputs, written)
 * if (problems.length > 0) fail(`${problems[0].name}: ${problems[0].problem}`)
 * ```
 */
export function checkFlowValues(
  parameters: readonly FlowParameter[],
  given: Readonly<Record<string, unknown>>,
): CheckedFlowValues {
  const declared = new Set(parameters.map((parameter) => parameter.name))
  const undeclared = Object.keys(given).filter((name) => !declared.has(name))
  const values: Record<string, unknown> = {}
  const problems: FlowValueProblem[] = []
  for (const parameter of parameters) {
    const value = Object.hasOwn(given, parameter.name) ? given[parameter.name] : parameter.default
    if (value === undefined) {
      if (parameter.required) problems.push({ name: parameter.name, problem: 'required' })
      continue
    }
    if (!FLOW_VALUE_TYPES[parameter.type](value)) {
      problems.push({ name: parameter.name, problem: `must be of type ${parameter.type}` })
      continue
    }
    values[parameter.name] = value
  }
  return { values, problems, undeclared }
}
