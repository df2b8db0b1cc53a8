import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { passwdEntry } from './passwd-entry.ts'

describe('an account is looked up as the system looks it up', () => {
  it('finds an account through NSS, with its ids and home', () => {
    expect(passwdEntry('root')).toEqual({ name: 'root', uid: 0, gid: 0, home: '/root' })
  })

  it('finds no account that does not exist, nor one named like an option', () => {
    expect(passwdEntry('no-such-account-7q')).toBeUndefined()
    expect(passwdEntry('--help')).toBeUndefined()
  })

  it('reads a passwd file instead when given one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'desklink-passwd-'))
    try {
      const file = join(dir, 'passwd')
      writeFileSync(file, 'alice:x:4242:4343::/home/alice:/bin/sh\n')
      expect(passwdEntry('alice', file)).toEqual({
        name: 'alice',
        uid: 4242,
        gid: 4343,
        home: '/home/alice',
      })
      expect(passwdEntry('root', file)).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
