/**
 * How the CLI lays out what it prints for people: a value of several lines keeps to its column,
 * and an error's details name the command's options where the request's fields would be.
 */
import { describe, expect, it } from 'vitest'

import type { CliIo } from '../../packages/cli/src/io.ts'
import { printObject } from '../../packages/cli/src/output/print.ts'
import { detailLines } from '../../packages/cli/src/output/print-error.ts'

/** What a command printed on standard output. */
function printed(value: Record<string, unknown>): string {
  let out = ''
  const io = { out: (text: string) => (out += text) } as unknown as CliIo
  printObject(io, {}, value)
  return out
}

describe('printing for people', () => {
  it('keeps a value of several lines to its column', () => {
    expect(printed({ status: 'Failed', error: 'FlowFailed: last output:\nwarning\nfatal' })).toBe(
      'status: Failed\n' +
        'error:  FlowFailed: last output:\n' +
        '        warning\n' +
        '        fatal\n',
    )
  })

  it("names the options that set the fields an error's details list", () => {
    const flags = { timeoutSeconds: '--timeout', callbackUrl: '--callback-url' }
    expect(
      detailLines(
        {
          issues: [{ path: 'callbackUrl', message: 'must be an https:// URL' }],
          field: 'timeoutSeconds',
          differs: ['timeoutSeconds', 'inputs'],
          max: 600,
        },
        flags,
      ),
    ).toEqual([
      '--callback-url: must be an https:// URL',
      'field: --timeout',
      'differs: --timeout, inputs',
      'max: 600',
    ])
  })
})
