/**
 * Where the master key comes from: `DESKLINK_MASTER_KEY` (32 bytes, base64 or hex) or a key
 * file in the data directory, created with mode 0600 on first start. Without either the server
 * does not start: secrets are never stored in plaintext (architecture §7, fail closed).
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

const KEY_BYTES = 32

/** Where the key was found; logged (never the key itself). */
export type MasterKeySource = 'environment' | 'key-file' | 'new-key-file'

/** Decodes a key given as 64 hex digits or base64/base64url of 32 bytes. */
export function decodeMasterKey(text: string): Buffer {
  const trimmed = text.trim()
  const key = /^[0-9a-f]{64}$/i.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64')
  if (key.length !== KEY_BYTES) {
    throw new TypeError(
      `The master key must decode to ${KEY_BYTES} bytes (64 hex digits or 44 base64 characters).`,
    )
  }
  return key
}

/**
 * Returns the master key. With `fromEnvironment` unset, reads `keyFile`, or creates it when
 * `createIfMissing` is true; otherwise throws a `TypeError` that says what to do.
 */
export function loadMasterKey(options: {
  fromEnvironment: string | undefined
  keyFile: string
  createIfMissing: boolean
}): { key: Buffer; source: MasterKeySource } {
  if (options.fromEnvironment) {
    return { key: decodeMasterKey(options.fromEnvironment), source: 'environment' }
  }
  if (existsSync(options.keyFile)) {
    const mode = statSync(options.keyFile).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new TypeError(
        `The master key file ${options.keyFile} is readable by others (mode ${mode.toString(8)}); run chmod 600 on it.`,
      )
    }
    return { key: decodeMasterKey(readFileSync(options.keyFile, 'utf8')), source: 'key-file' }
  }
  if (!options.createIfMissing) {
    throw new TypeError(
      `No master key: set DESKLINK_MASTER_KEY or create ${options.keyFile} (32 random bytes, base64, mode 0600).`,
    )
  }
  mkdirSync(dirname(options.keyFile), { recursive: true, mode: 0o700 })
  const key = randomBytes(KEY_BYTES)
  writeFileSync(options.keyFile, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(options.keyFile, 0o600)
  return { key, source: 'new-key-file' }
}
