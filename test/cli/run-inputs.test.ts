/**
 * `--input name=value` read as the flow declares each input: text as given, numbers in JSON's
 * grammar, true or false, JSON parsed; a value not of its type is a usage error naming the input.
 */
import { describe, expect, it } from 'vitest'

import { typedInputs } from '../../packages/cli/src/commands/run-inputs.ts'
import { CliError } from '../../packages/cli/src/io.ts'

const DECLARED = [
  { name: 'zip', type: 'text', sensitive: false },
  { name: 'count', type: 'number', sensitive: false },
  { name: 'dryRun', type: 'boolean', sensitive: false },
  { name: 'options', type: 'json', sensitive: false },
  { name: 'pin', type: 'number', sensitive: true },
] as const

/** The usage error `typedInputs` throws for `pairs`. */
function refusal(pairs: string[]): CliError {
  try {
    typedInputs(pairs, DECLARED)
  } catch (error) {
    if (error instanceof CliError) return error
    throw error
  }
  throw new Error(`no refusal for ${pairs.join(' ')}`)
}

describe('--input values typed by the flow’s manifest', () => {
  it('keeps text as given, whatever it looks like', () => {
    for (const value of ['90210', 'true', '{"a":1}', '', 'a=b'])
      expect(typedInputs([`zip=${value}`], DECLARED)).toEqual({ zip: value })
  })

  it('parses numbers, booleans and JSON', () => {
    expect(
      typedInputs(
        ['count=-1.5e2', 'dryRun=False', 'options=[1,{"deep":null}]', 'pin=42.5'],
        DECLARED,
      ),
    ).toEqual({ count: -150, dryRun: false, options: [1, { deep: null }], pin: 42.5 })
    expect(typedInputs(['options=null', 'options="text"'], DECLARED)).toEqual({ options: 'text' })
  })

  it('refuses a value not of its type, naming the input and the type', () => {
    for (const [pair, type] of [
      ['count=', 'number'],
      ['count=0x1f', 'number'],
      ['count=Infinity', 'number'],
      ['count=1e999', 'number'],
      ['count=twelve', 'number'],
      ['dryRun=yes', 'boolean'],
      ['dryRun=1', 'boolean'],
      ['options={a:1}', 'json'],
      ['options=plain text', 'json'],
    ] as const) {
      const error = refusal([pair])
      const name = pair.slice(0, pair.indexOf('='))
      expect(error, pair).toMatchObject({
        code: 'InvalidOption',
        exitCode: 2,
        details: { input: name, type },
      })
      expect(error.message).toMatch(
        new RegExp(`^--input ${name} takes .*'${name}' of type ${type}`),
      )
    }
  })

  it('does not repeat a sensitive value it refuses', () => {
    const error = refusal(['pin=hunter2'])
    expect(error.message).toContain('--input pin takes a number')
    expect(error.message).not.toContain('hunter2')
  })

  it('passes names the flow does not declare as given, for the server to refuse', () => {
    expect(typedInputs(['unknown=7'], DECLARED)).toEqual({ unknown: '7' })
    expect(refusal(['=7']).message).toBe("--input takes name=value, got '=7'.")
  })
})
