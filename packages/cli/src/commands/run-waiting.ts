/**
 * How `desklink run` waits for its run to end: it polls the run, says on standard error why a
 * queued run waits and where it runs (with `--json` too: standard output stays the run alone),
 * and stops waiting, never the run, on Ctrl+C.
 *
 * The run lives on the server, so losing the server for a moment (a restart, a network blip)
 * must not end the waiting: a poll that fails with a code a moment may cure is tried again with
 * capped, jittered backoff (0.5 s doubling to 8 s) for up to 30 s, long enough for a server to
 * restart, short enough that a script learns in time that it is gone. The message then names
 * the run, which goes on, and how to follow it.
 *
 * @module
 */
import { type Run, RunOutcome } from '@desklink/protocol'

import type { ApiClient } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { tryNameOf } from './display-names.ts'
import { whyWaiting } from './run-summary.ts'

const id = (value: string) => encodeURIComponent(value)

/** The statuses of a run that has ended. */
export const ENDED: ReadonlySet<string> = new Set(RunOutcome.options)

const POLL_INTERVAL_MS = 500
/** The codes of a failed poll worth trying again: nothing answered, or not yet ready. */
const TRANSIENT_CODES = new Set(['ServerUnreachable', 'ServiceUnavailable'])
const RETRY_FOR_MS = 30_000
const FIRST_RETRY_DELAY_MS = 500
const MAX_RETRY_DELAY_MS = 8_000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Spreads the retries of many waiting commands, so that a restarted server is not hit at once. */
const jittered = (ms: number) => Math.round(ms * (0.75 + Math.random() / 2))

/** Ctrl+C (or SIGTERM) while waiting: the run goes on, and the message says how to follow it. */
function stoppedWaiting(run: Run, signal: string): CliError {
  return new CliError(
    'StoppedWaiting',
    `Stopped waiting; run ${run.id} is still ${run.status} and goes on. ` +
      `Follow it with \`desklink runs show ${run.id}\`; cancel it with ` +
      `\`desklink runs cancel ${run.id}\`.`,
    { exitCode: signal === 'SIGTERM' ? 143 : 130 },
  )
}

/** The server stayed out of reach: the last poll's error, with the run that goes on without us. */
function lostServer(run: Run, error: CliError): CliError {
  return new CliError(
    error.code,
    `${error.message.replace(/([^.!?])$/, '$1.')} Stopped waiting after ` +
      `${RETRY_FOR_MS / 1000} s without an answer; run ${run.id} goes on on the server. ` +
      `Follow it with \`desklink runs show ${run.id}\` once the server answers.`,
    { details: { runId: run.id }, requestId: error.requestId },
  )
}

/** What a waiting run is doing, as one line: its place in the queue and why, or its machine. */
function progressLine(run: Run, machine: string | undefined): string {
  if (run.status !== 'Queued')
    return `Running on machine ${machine ?? ''} as ${run.machineCredentialUser ?? ''}`
  const why = run.waiting ? whyWaiting(run.waiting) : ''
  return `Queued (position ${run.waiting?.position ?? '?'})${why ? `: ${why}` : ''}`
}

/**
 * Waits until the run ends and returns it, saying on standard error how it goes. Throws
 * `StoppedWaiting` on Ctrl+C, and the last poll's error when the server stays out of reach.
 *
 * @example
 * const ended = await waitForEnd(io, client, queued)
 * if (ended.status !== 'Succeeded') ...
 */
export async function waitForEnd(io: CliIo, client: ApiClient, queued: Run): Promise<Run> {
  let run = queued
  if (ENDED.has(run.status)) return run
  io.err(`Run ${run.id}\n`)
  let signal = ''
  const stopped = io.waitForStop().then((name) => {
    signal = name
    return 'stopped' as const
  })
  /** `work`, unless Ctrl+C comes first: a poll to a silent server must not hold it up. */
  const unlessStopped = async <T>(work: Promise<T>): Promise<T> => {
    const first = await Promise.race([work, stopped])
    if (first === 'stopped') throw stoppedWaiting(run, signal)
    return first
  }
  const poll = () => unlessStopped(client.request<Run>('GET', `/runs/${id(run.id)}`))

  let said = ''
  /** The machine the run went to, by name once read. */
  let machine: { id: string; shown: string } | undefined
  while (!ENDED.has(run.status)) {
    if (run.machineId && machine?.id !== run.machineId) {
      const name = await unlessStopped(tryNameOf(client, `/machines/${id(run.machineId)}`))
      machine = { id: run.machineId, shown: name ?? run.machineId }
    }
    const line = progressLine(run, machine?.shown)
    if (line !== said) io.err(`${line}\n`)
    said = line
    await unlessStopped(sleep(POLL_INTERVAL_MS))
    run = await pollThroughOutages(io, run, poll, unlessStopped)
  }
  return run
}

/** The run polled again, tried again while the server is out of reach for up to 30 s. */
async function pollThroughOutages(
  io: CliIo,
  run: Run,
  poll: () => Promise<Run>,
  unlessStopped: <T>(work: Promise<T>) => Promise<T>,
): Promise<Run> {
  let lostAt: number | undefined
  let delayMs = FIRST_RETRY_DELAY_MS
  for (;;) {
    try {
      const fresh = await poll()
      if (lostAt !== undefined) io.err('The server answers again.\n')
      return fresh
    } catch (error) {
      if (!(error instanceof CliError) || !TRANSIENT_CODES.has(error.code)) throw error
      const now = Date.now()
      if (lostAt === undefined) {
        lostAt = now
        io.err(
          `${error.message.replace(/([^.!?])$/, '$1.')} Trying again for up to ` +
            `${RETRY_FOR_MS / 1000} s; run ${run.id} goes on on the server.\n`,
        )
      }
      const leftMs = lostAt + RETRY_FOR_MS - now
      if (leftMs <= 0) throw lostServer(run, error)
      await unlessStopped(sleep(Math.min(jittered(delayMs), leftMs)))
      delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS)
    }
  }
}
