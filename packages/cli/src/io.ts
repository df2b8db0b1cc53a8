/**
 * What a command may touch of the outside world, handed in by the composition root so that
 * commands never read `process` themselves and tests can run them in-process.
 *
 * @module
 */

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly homeDir: string
  out(text: string): void
  err(text: string): void
  /** Reads all of standard input (for secrets passed with `--…-stdin`). */
  readStdin(): Promise<string>
  /** Resolves when the process is asked to stop (SIGINT or SIGTERM) from now on. */
  waitForStop(): Promise<string>
  readonly fetch: typeof fetch
  /** How to start this same program again (node and its script), for child processes. */
  readonly selfCommand: readonly string[]
}

/**
 * An error the CLI reports as one clear line with what its details say (all of it with --json),
 * and an exit code.
 */
export class CliError extends Error {
  readonly exitCode: number
  readonly code: string
  /** The API's `details` (the fields or inputs to fix, a limit), when it sent any. */
  readonly details: unknown
  /** The API request's id, to quote when reporting a server error. */
  readonly requestId: string | undefined
  /** The option that set each field of the request, named in its place for people. */
  readonly flags: Readonly<Record<string, string>> | undefined

  constructor(
    code: string,
    message: string,
    options: {
      exitCode?: number
      details?: unknown
      requestId?: string | undefined
      flags?: Readonly<Record<string, string>>
    } = {},
  ) {
    super(message)
    this.name = 'CliError'
    this.code = code
    this.exitCode = options.exitCode ?? 1
    this.details = options.details
    this.requestId = options.requestId
    this.flags = options.flags
  }
}

/**
 * `request`, whose refusal names the command's options instead of the request's fields (`flags`:
 * field → option), so that people are told what to change on their command line. `--json`
 * still gets the API's own body.
 */
export async function namingFlags<T>(
  flags: Readonly<Record<string, string>>,
  request: Promise<T>,
): Promise<T> {
  try {
    return await request
  } catch (error) {
    if (!(error instanceof CliError)) throw error
    throw new CliError(error.code, error.message, {
      exitCode: error.exitCode,
      details: error.details,
      requestId: error.requestId,
      flags,
    })
  }
}
