/**
 * Option values checked on the command line, before anything is sent: a usage error (exit 2)
 * names the option and what it takes. The server still checks ranges and limits.
 *
 * @module
 */
import { CliError } from '../io.ts'

/** A whole number. */
export function wholeNumber(option: string, value: string, least = 0): number {
  if (!/^\d+$/.test(value) || Number(value) < least)
    throw new CliError(
      'InvalidOption',
      `${option} takes a whole number of ${least} or more, not '${value}'.`,
      { exitCode: 2 },
    )
  return Number(value)
}

/** A value of a closed set. */
export function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new CliError('InvalidOption', `${option} takes ${allowed.join(', ')}, not '${value}'.`, {
      exitCode: 2,
    })
  return value as T
}

/** A switch: on or off (yes/no, true/false, 1/0); undefined when not given. */
export function onOff(option: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined
  if (/^(on|yes|true|1)$/i.test(value)) return true
  if (/^(off|no|false|0)$/i.test(value)) return false
  throw new CliError('InvalidOption', `${option} takes on or off, not '${value}'.`, {
    exitCode: 2,
  })
}
