/**
 * The agent's run journal on disk: an entry it cannot read (a disk error, a hand edit) is said
 * in the log, once, without quoting what is in it (a run's outputs may be), and left where it
 * is; the others are read as before. Temporary files of writes a crash interrupted go when the
 * journal opens.
 */
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { createRunJournal } from '../../packages/agent/src/runs/run-journal.ts'
import { createRecordingLogger } from './recording-logger.ts'

describe("the agent's run journal", () => {
  let stateDir: string
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'desklink-journal-'))
  })
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }))

  it('says once in the log which entry it cannot read, without quoting it, and reads the others', () => {
    const logger = createRecordingLogger()
    const journal = createRunJournal(stateDir, logger)
    const whole = randomUUID()
    journal.accept(whole, new Date().toISOString())
    const torn = randomUUID()
    const tornFile = join(stateDir, 'runs', `${torn}.json`)
    // Cut short in the middle of a result whose outputs hold a value nobody may read in a log.
    writeFileSync(
      tornFile,
      `{"runId":"${torn}","state":"finished","result":{"outputs":{"note":"canary-journal-value`,
      { mode: 0o600 },
    )

    expect(journal.all().map((entry) => entry.runId)).toEqual([whole])
    expect(journal.read(torn)).toBeUndefined()
    expect(journal.all()).toHaveLength(1)

    expect(logger.entries).toHaveLength(1)
    expect(logger.entries[0]).toMatchObject({
      level: 'error',
      fields: { runId: torn, file: tornFile, reason: 'it is not valid JSON' },
    })
    expect(JSON.stringify(logger.entries)).not.toContain('canary-journal-value')
    expect(existsSync(tornFile)).toBe(true)
  })

  it('removes, when it opens, what writes a crash interrupted left', () => {
    const runs = join(stateDir, 'runs')
    mkdirSync(runs, { recursive: true })
    const runId = randomUUID()
    writeFileSync(join(runs, `${runId}.json.${randomUUID()}.tmp`), '{"runId"')
    const journal = createRunJournal(stateDir)
    journal.accept(runId, new Date().toISOString())
    expect(readdirSync(runs)).toEqual([`${runId}.json`])
    expect(journal.read(runId)).toMatchObject({ runId, state: 'running' })
  })
})
