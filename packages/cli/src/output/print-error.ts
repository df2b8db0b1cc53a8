/**
 * How the CLI reports an error: for people, one line with the code and what to do, then what
 * the details say (each field or input to fix, a limit); for programs (`--json`), the API's
 * own error body on standard error.
 *
 * @module
 */
import type { CliError, CliIo } from '../io.ts'

/** Codes whose remediation asks for the request id (the server failed, not the request). */
const QUOTE_REQUEST_ID = new Set(['InternalError', 'HttpError'])

export function printError(io: CliIo, error: CliError, json: boolean): void {
  if (json) {
    const body = {
      error: {
        code: error.code,
        message: error.message,
        ...(error.details !== undefined && { details: error.details }),
      },
      ...(error.requestId !== undefined && { requestId: error.requestId }),
    }
    io.err(`${JSON.stringify(body)}\n`)
    return
  }
  const lines = [`Error (${error.code}): ${error.message}`]
  for (const line of detailLines(error.details, error.flags)) lines.push(`  ${line}`)
  if (error.requestId && QUOTE_REQUEST_ID.has(error.code))
    lines.push(`  request id: ${error.requestId}`)
  io.err(`${lines.join('\n')}\n`)
}

interface Issue {
  path?: string
  message?: string
}
interface Problem {
  input?: string
  problem?: string
}
/** A machine's last refusal of a run that waited out its queue (`NoCandidateMachine`). */
interface SubError {
  machineName?: string
  code?: string
  reason?: string
}

/** Something named, listed in details (the connections that use a credential, say). */
const isNamed = (value: unknown): value is { id: string; name: string } =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { id?: unknown }).id === 'string' &&
  typeof (value as { name?: unknown }).name === 'string'

const text = (value: unknown): string =>
  typeof value === 'string' ? value : (JSON.stringify(value) ?? '')

/** Keys of details whose values are fields of the request. */
const NAMES_FIELDS = new Set(['field', 'fields', 'differs'])

/** The option that set a field, or the field. */
function flagOf(path: string | undefined, flags: Readonly<Record<string, string>>): string {
  if (!path) return '(request)'
  return Object.hasOwn(flags, path) ? flags[path] : path
}

/**
 * The details as lines: validation issues, input problems and machines' refusals one per line,
 * anything else as `key: value`.
 */
export function detailLines(
  details: unknown,
  flags: Readonly<Record<string, string>> = {},
): string[] {
  if (details === undefined || details === null) return []
  if (typeof details !== 'object') return [text(details)]
  const lines: string[] = []
  for (const [key, value] of Object.entries(details)) {
    if (key === 'issues' && Array.isArray(value))
      for (const issue of value as Issue[])
        lines.push(`${flagOf(issue.path, flags)}: ${text(issue.message)}`)
    else if (key === 'problems' && Array.isArray(value))
      for (const problem of value as Problem[])
        lines.push(`${text(problem.input)}: ${text(problem.problem)}`)
    else if (key === 'subErrors' && Array.isArray(value))
      for (const sub of value as SubError[])
        lines.push(`${text(sub.machineName)}: ${text(sub.reason)} (${text(sub.code)})`)
    // Fields named in a detail (a limit's, those an idempotent retry changed): as options too.
    else if (NAMES_FIELDS.has(key) && typeof value === 'string')
      lines.push(`${key}: ${flagOf(value, flags)}`)
    else if (NAMES_FIELDS.has(key) && Array.isArray(value))
      lines.push(`${key}: ${value.map((field) => flagOf(text(field), flags)).join(', ')}`)
    else if (Array.isArray(value) && value.every(isNamed))
      lines.push(`${key}: ${value.map((item) => `${item.name} (${item.id})`).join(', ')}`)
    else lines.push(`${key}: ${text(value)}`)
  }
  return lines
}
