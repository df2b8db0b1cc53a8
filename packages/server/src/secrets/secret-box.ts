/**
 * Encryption of server-side secrets at rest (signing keys today; refresh tokens of sign-in
 * connections and store settings later): AES-256-GCM under the master key, with the record's id
 * as additional authenticated data so a sealed value cannot be moved to another record.
 *
 * Sealed format: `v1.<iv>.<ciphertext>.<tag>`, each part base64url.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

import { AppError } from '../errors/index.ts'

const VERSION = 'v1'
const KEY_BYTES = 32
const IV_BYTES = 12

/** Seals and opens small secrets bound to a record id. */
export interface SecretBox {
  seal(plaintext: string, recordId: string): string
  open(sealed: string, recordId: string): string
}

/**
 * @example
 * ```ts
 * const box = createSecretBox(masterKey)
 * const sealed = box.seal('private jwk', 'kid-1')
 * box.open(sealed, 'kid-1') // 'private jwk'
 * ```
 */
export function createSecretBox(masterKey: Buffer): SecretBox {
  if (masterKey.length !== KEY_BYTES) {
    throw new TypeError(`The master key must be ${KEY_BYTES} bytes, got ${masterKey.length}`)
  }
  const key = Buffer.from(masterKey)
  return {
    seal(plaintext, recordId) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(recordId, 'utf8'))
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return [VERSION, iv, body, cipher.getAuthTag()]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.')
    },
    open(sealed, recordId) {
      const [version, iv, body, tag] = sealed.split('.')
      if (version !== VERSION || !iv || !body || !tag) {
        throw new AppError('InternalError', { message: 'A sealed secret has an unknown format.' })
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
        decipher.setAAD(Buffer.from(recordId, 'utf8'))
        decipher.setAuthTag(Buffer.from(tag, 'base64url'))
        return Buffer.concat([
          decipher.update(Buffer.from(body, 'base64url')),
          decipher.final(),
        ]).toString('utf8')
      } catch (cause) {
        throw new AppError('InternalError', {
          message: 'A sealed secret could not be opened: wrong master key or tampered record.',
          cause,
        })
      }
    },
  }
}
