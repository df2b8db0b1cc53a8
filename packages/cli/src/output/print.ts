/**
 * Output for people (aligned tables, key/value blocks) or for programs (`--json`).
 *
 * @module
 */
import type { CliIo } from '../io.ts'

export interface OutputOptions {
  readonly json?: boolean | undefined
}

const cell = (value: unknown): string => {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

/** Prints rows as a table with the given columns, or the raw value with `--json`. */
export function printTable<T extends Record<string, unknown>>(
  io: CliIo,
  options: OutputOptions,
  rows: readonly T[],
  columns: readonly (keyof T & string)[],
  raw: unknown = rows,
): void {
  if (options.json) {
    io.out(`${JSON.stringify(raw, null, 2)}\n`)
    return
  }
  if (rows.length === 0) {
    io.out('(none)\n')
    return
  }
  const widths = columns.map((column) =>
    Math.max(column.length, ...rows.map((row) => cell(row[column]).length)),
  )
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  io.out(`${line(columns.map((c) => c.toUpperCase()))}\n`)
  for (const row of rows) io.out(`${line(columns.map((c) => cell(row[c])))}\n`)
}

/** Prints one object as `key: value` lines, or as JSON with `--json`. */
export function printObject(
  io: CliIo,
  options: OutputOptions,
  value: Record<string, unknown>,
): void {
  if (options.json) {
    io.out(`${JSON.stringify(value, null, 2)}\n`)
    return
  }
  const width = Math.max(...Object.keys(value).map((k) => k.length))
  // A value of several lines (a flow's last output) keeps to its column.
  const indent = `\n${' '.repeat(width + 2)}`
  for (const [key, v] of Object.entries(value))
    io.out(`${`${key}:`.padEnd(width + 2)}${cell(v).split('\n').join(indent)}\n`)
}
