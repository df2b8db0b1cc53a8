/**
 * Runs the built `desklink` command as a real process, and waits for things to become true.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

export const BIN = resolve('bin/desklink.js')

export function assertBuilt(): void {
  if (!existsSync('dist/desklink.mjs'))
    throw new Error('Run `npm run build` first (npm test does).')
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export function desklink(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, ...options.env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

/** A long-running desklink process (the agent daemon) whose output is collected. */
export interface LongRunning {
  readonly child: ChildProcessWithoutNullStreams
  output(): string
  exited(): Promise<number | null>
  stop(): Promise<number | null>
}

export function spawnDesklink(args: string[], env: Record<string, string>): LongRunning {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  child.stdin.end()
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  return {
    child,
    output: () => output,
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      const code = await exit
      clearTimeout(timer)
      return code
    },
  }
}

/** Polls `check` until it returns a truthy value or the time is up. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(
    `Timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
  )
}
