/**
 * A run's inputs from the command line: `--input name=value`, each value converted to the type
 * the flow's manifest declares for that input, and `--inputs-file` (one JSON object, typed as
 * it is). A guess from the value alone would be wrong both ways: a ZIP code `90210` declared as
 * text is text, and `abc` given for a number is a mistake to say here, naming the input.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

import type { FlowParameter } from '@desklink/protocol'

import { CliError, type CliIo } from '../io.ts'

/** What each declared type takes on the command line, as the usage error says it. */
const EXPECTED: Record<FlowParameter['type'], string> = {
  text: 'text',
  number: 'a number (such as 42, -1.5 or 1e3)',
  boolean: 'true or false',
  json: 'JSON (an object, a list, a number, true, false, null, or "quoted" text)',
}

/** The value as JSON, or undefined when it is not JSON. */
function tryParseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown
  } catch {
    return undefined
  }
}

/** The value converted to the declared type, or undefined when it is not of that type. */
const CONVERT: Record<FlowParameter['type'], (raw: string) => unknown> = {
  text: (raw) => raw,
  // JSON's grammar for numbers: Number() would take '', '0x1f' and ' 7 ' too.
  number: (raw) => {
    const value = /^\s*-?\d/.test(raw) ? tryParseJson(raw) : undefined
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined
  },
  boolean: (raw) => (/^true$/i.test(raw) ? true : /^false$/i.test(raw) ? false : undefined),
  json: (raw) => tryParseJson(raw),
}

/** Splits `name=value` at the first `=`: a value may hold more. */
function splitPair(pair: string): [string, string] {
  const at = pair.indexOf('=')
  if (at <= 0)
    throw new CliError('InvalidOption', `--input takes name=value, got '${pair}'.`, {
      exitCode: 2,
    })
  return [pair.slice(0, at), pair.slice(at + 1)]
}

/**
 * `name=value` pairs, each value converted to the type `declared` gives its input. A name the
 * flow does not declare is sent as given, as text: the server's refusal lists every input that
 * is wrong at once, with its code.
 *
 * @example
 * typedInputs(['zip=90210', 'times=3'], [
 *   { name: 'zip', type: 'text' },
 *   { name: 'times', type: 'number' },
 * ]) // { zip: '90210', times: 3 }
 */
export function typedInputs(
  pairs: readonly string[],
  declared: readonly Pick<FlowParameter, 'name' | 'type' | 'sensitive'>[],
): Record<string, unknown> {
  const byName = new Map(declared.map((parameter) => [parameter.name, parameter]))
  const inputs: Record<string, unknown> = {}
  for (const pair of pairs) {
    const [name, raw] = splitPair(pair)
    const parameter = byName.get(name)
    if (!parameter) {
      inputs[name] = raw
      continue
    }
    const value = CONVERT[parameter.type](raw)
    if (value === undefined)
      throw new CliError(
        'InvalidOption',
        `--input ${name} takes ${EXPECTED[parameter.type]}, ` +
          // A sensitive value is not repeated: standard error ends up in CI logs.
          `${parameter.sensitive ? 'which the value given is not' : `not '${raw}'`}: ` +
          `the flow declares '${name}' of type ${parameter.type}.`,
        { exitCode: 2, details: { input: name, type: parameter.type } },
      )
    inputs[name] = value
  }
  return inputs
}

/** The inputs of `--inputs-file`: one JSON object, from a file or standard input (`-`). */
export async function inputsFrom(io: CliIo, path: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = path === '-' ? await io.readStdin() : readFileSync(resolve(io.cwd, path), 'utf8')
  } catch (error) {
    throw new CliError('InvalidOption', `--inputs-file: ${(error as Error).message}`, {
      exitCode: 2,
    })
  }
  // Not the parser's message: it would quote the file, which may hold secrets.
  const parsed = tryParseJson(text)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CliError('InvalidOption', '--inputs-file must hold one JSON object of inputs.', {
      exitCode: 2,
    })
  return parsed as Record<string, unknown>
}
