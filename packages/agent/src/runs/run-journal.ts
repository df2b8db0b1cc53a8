/**
 * The machine's record of its runs, on disk (0600 files, one per run), so a run is started at
 * most once and its result survives until the server acknowledges it: a run is written here
 * as accepted before it starts, its result before it is sent, and removed on the server's ack.
 * After an agent restart, a run still marked running was lost with the agent: it is finished
 * as failed (and its process group killed, if anything is left).
 *
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { AgentRunFinished } from '@desklink/protocol'

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

export function createRunJournal(stateDir: string) {
  const dir = join(stateDir, 'runs')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = (runId: string) => join(dir, `${runId}.json`)

  function write(entry: JournalEntry) {
    // Written whole, then renamed: a crash leaves the old entry or the new one, never half.
    const temporary = `${file(entry.runId)}.tmp`
    writeFileSync(temporary, JSON.stringify(entry), { mode: 0o600 })
    renameSync(temporary, file(entry.runId))
  }

  function read(runId: string): JournalEntry | undefined {
    try {
      return JSON.parse(readFileSync(file(runId), 'utf8')) as JournalEntry
    } catch {
      return undefined
    }
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
    },
  }
}

export type RunJournal = ReturnType<typeof createRunJournal>
