/**
 * The group key package: the group's X25519 private key wrapped with the group password, made
 * and opened only on member machines. scrypt (N=2^15, r=8, p=1) derives the wrapping key from
 * the password; AES-256-GCM with the group id as additional data seals the key. The server
 * stores the package but, without the password, cannot open it.
 *
 * Format: `v1.<salt>.<iv>.<ciphertext>.<tag>`, each base64url.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto'

import { AgentError } from '../agent-error.ts'

const PARAMS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }

function deriveKey(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, 32, PARAMS, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  )
}

export async function wrapGroupKey(
  privateKey: string,
  password: string,
  groupId: string,
): Promise<string> {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(password, salt), iv)
  cipher.setAAD(Buffer.from(`group-key:${groupId}`))
  const body = Buffer.concat([cipher.update(privateKey, 'utf8'), cipher.final()])
  return ['v1', salt, iv, body, cipher.getAuthTag()]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.')
}

/** @throws AgentError `GroupPasswordIncorrect` when the password does not open the package. */
export async function unwrapGroupKey(
  keyPackage: string,
  password: string,
  groupId: string,
): Promise<string> {
  const [version, salt, iv, body, tag] = keyPackage.split('.')
  if (version !== 'v1' || !salt || !iv || !body || !tag)
    throw new AgentError('GroupKeyMismatch', {
      message: 'The group key package has an unknown format.',
    })
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      await deriveKey(password, Buffer.from(salt, 'base64url')),
      Buffer.from(iv, 'base64url'),
    )
    decipher.setAAD(Buffer.from(`group-key:${groupId}`))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([
      decipher.update(Buffer.from(body, 'base64url')),
      decipher.final(),
    ]).toString('utf8')
  } catch {
    throw new AgentError('GroupPasswordIncorrect')
  }
}
