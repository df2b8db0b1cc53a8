import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { decodeMasterKey, loadMasterKey } from './master-key.ts'
import { createSecretBox } from './secret-box.ts'

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32))

  it('opens what it sealed for the same record', () => {
    expect(box.open(box.seal('the secret', 'record-1'), 'record-1')).toBe('the secret')
  })

  it('never contains the plaintext and differs on every seal', () => {
    const a = box.seal('the secret', 'record-1')
    expect(a).not.toContain('the secret')
    expect(a).not.toBe(box.seal('the secret', 'record-1'))
  })

  it('refuses a sealed value moved to another record', () => {
    expect(() => box.open(box.seal('the secret', 'record-1'), 'record-2')).toThrow(
      /could not be opened/,
    )
  })

  it('refuses a value sealed under another master key', () => {
    const other = createSecretBox(randomBytes(32))
    expect(() => other.open(box.seal('the secret', 'r'), 'r')).toThrow(/could not be opened/)
  })

  it('refuses a tampered value', () => {
    const sealed = box.seal('the secret', 'r').split('.')
    sealed[2] = Buffer.from('tampered').toString('base64url')
    expect(() => box.open(sealed.join('.'), 'r')).toThrow()
  })

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow(TypeError)
  })
})

describe('master key', () => {
  const dirs: string[] = []
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'desklink-key-'))
    dirs.push(dir)
    return dir
  }
  afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })))

  it('creates a 0600 key file on first start and reads the same key afterwards', () => {
    const keyFile = join(tempDir(), 'sub', 'master.key')
    const first = loadMasterKey({ fromEnvironment: undefined, keyFile, createIfMissing: true })
    expect(first.source).toBe('new-key-file')
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const second = loadMasterKey({ fromEnvironment: undefined, keyFile, createIfMissing: true })
    expect(second.source).toBe('key-file')
    expect(second.key.equals(first.key)).toBe(true)
  })

  it('refuses to start without a key when creating one is not allowed', () => {
    const keyFile = join(tempDir(), 'master.key')
    expect(() =>
      loadMasterKey({ fromEnvironment: undefined, keyFile, createIfMissing: false }),
    ).toThrow(/No master key/)
  })

  it('refuses a key file others can read', () => {
    const keyFile = join(tempDir(), 'master.key')
    writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o644 })
    expect(() =>
      loadMasterKey({ fromEnvironment: undefined, keyFile, createIfMissing: true }),
    ).toThrow(/chmod 600/)
    expect(readFileSync(keyFile, 'utf8').length).toBeGreaterThan(0)
  })

  it('prefers DESKLINK_MASTER_KEY and accepts hex or base64', () => {
    const key = randomBytes(32)
    expect(decodeMasterKey(key.toString('hex')).equals(key)).toBe(true)
    expect(decodeMasterKey(key.toString('base64')).equals(key)).toBe(true)
    const loaded = loadMasterKey({
      fromEnvironment: key.toString('base64'),
      keyFile: '/nonexistent/x',
      createIfMissing: false,
    })
    expect(loaded.source).toBe('environment')
    expect(() => decodeMasterKey('too-short')).toThrow(TypeError)
  })
})
