import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { prepareWorkDir } from './work-dir.ts'

const asRoot = process.getuid?.() === 0
/** An agent that is not root, as this uid: the directories are handed to it with chown. */
const AGENT = 4321
const OTHER = 4322

describe.skipIf(!asRoot)("a non-root agent's work directory", () => {
  let top: string
  let home: string
  let base: string
  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), 'desklink-workdir-'))
    chmodSync(top, 0o755)
    home = join(top, 'home')
    base = join(home, 'workspaces')
    mkdirSync(base, { recursive: true, mode: 0o711 })
    chownSync(home, AGENT, AGENT)
    chownSync(base, AGENT, AGENT)
  })
  afterEach(() => rmSync(top, { recursive: true, force: true }))
  const check = () => prepareWorkDir(base, { uid: AGENT, forOtherAccounts: false })

  it('is taken under a home of its own that its group may write (umask 002)', () => {
    chmodSync(home, 0o775)
    expect(check()).toBeUndefined()
  })

  it('is refused under a directory of another account, or one anyone may write', () => {
    chownSync(home, OTHER, OTHER)
    expect(check()).toMatchObject({ code: 'WorkDirUnsafe' })
    chownSync(home, AGENT, AGENT)
    chmodSync(home, 0o777)
    expect(check()).toMatchObject({ code: 'WorkDirUnsafe' })
  })
})
