/**
 * The machine's record of its runs, on disk (0600 files, one per run), so a run is started at
 * most once and its result survives until the server acknowledges it: a run is written here
 * as accepted before it starts, its result before it is sent, and removed on the server's ack.
 * After an agent restart, a run still marked running was lost with the agent: it is finished
 * as failed (and its process group killed, if anything is left).
 *
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

import type { AgentRunFinished } from '@desklink/protocol'

import type { AgentLogger } from '../agent-logger.ts'
import { removeInterruptedWrites, writeDurably } from '../state/durable-write.ts'

export interface JournalEntry {
  readonly runId: string
  readonly state: 'running' | 'finished'
  /** The flow's process group, once it runs, and the boot it belongs to. */
  readonly pgid?: number
  readonly bootId?: string
  readonly startedAt: string
  readonly osAccount?: string
  readonly result?: AgentRunFinished
}

const RUN_FILE = /^[0-9a-f-]{36}\.json$/

/** This boot of the machine (Linux), so a process group id is never trusted across reboots. */
export function currentBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return undefined
  }
}

export function createRunJournal(stateDir: string, logger?: AgentLogger) {
  const dir = join(stateDir, 'runs')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  removeInterruptedWrites(dir)
  const file = (runId: string) => join(dir, `${runId}.json`)
  /** Entries said to be unreadable already: said once each, not at every reconnect. */
  const reported = new Set<string>()

  function write(entry: JournalEntry) {
    // Whole and flushed before it counts: a run is written as accepted before it starts, and
    // after a power cut it must still be known as started (never started twice).
    writeDurably(file(entry.runId), JSON.stringify(entry))
  }

  /**
   * The entry, or undefined. One that cannot be read is left where it is for a person to look
   * at, and said in the log: without it the run it records is unknown here (its result, if
   * any, is not sent again). The log says why without quoting it: it may hold a run's outputs.
   */
  function read(runId: string): JournalEntry | undefined {
    let text: string
    try {
      text = readFileSync(file(runId), 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') unreadable(runId, `it cannot be read (${code ?? 'unknown error'})`)
      return undefined
    }
    try {
      return JSON.parse(text) as JournalEntry
    } catch {
      unreadable(runId, 'it is not valid JSON')
      return undefined
    }
  }

  function unreadable(runId: string, reason: string) {
    if (reported.has(runId)) return
    reported.add(runId)
    logger?.error(
      { runId, file: file(runId), reason },
      'run journal entry unreadable: the run it records is unknown to this agent',
    )
  }

  function all(): JournalEntry[] {
    return readdirSync(dir)
      .filter((name) => RUN_FILE.test(name))
      .map((name) => read(name.slice(0, -5)))
      .filter((e): e is JournalEntry => e !== undefined)
  }

  return {
    read,
    all,
    knows: (runId: string) => read(runId) !== undefined,
    accept(runId: string, startedAt: string): void {
      write({ runId, state: 'running', startedAt })
    },
    update(runId: string, changes: Partial<JournalEntry>): void {
      const current = read(runId)
      if (current) write({ ...current, ...changes })
    },
    finish(result: AgentRunFinished): void {
      const current = read(result.runId)
      write({
        runId: result.runId,
        startedAt: current?.startedAt ?? result.startedAt,
        state: 'finished',
        result,
      })
    },
    /** The server has the result: forget the run. */
    remove(runId: string): void {
      rmSync(file(runId), { force: true })
      // Not flushed: an entry a power cut brings back only sends its result again, which the
      // server acknowledges again.
      reported.delete(runId)
    },
  }
}

export type RunJournal = ReturnType<typeof createRunJournal>
