/**
 * Password hashing with scrypt (RFC 7914). Format: `scrypt$<N>$<r>$<p>$<salt>$<hash>`, base64url,
 * so parameters can be raised later without invalidating stored hashes.
 *
 * N = 2^15, r = 8, p = 1 takes about 60 ms on this project's 2-core machine: slow for a guesser,
 * tolerable for a sign-in.
 *
 * @module
 */
import { randomBytes, scrypt, type ScryptOptions, timingSafeEqual } from 'node:crypto'

const N = 2 ** 15
const R = 8
const P = 1
const KEY_BYTES = 32

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { ...options, maxmem: 128 * N * R * 2 }, (error, key) =>
      error ? reject(error) : resolve(key),
    )
  })
}

/** @example `const stored = await hashPassword('correct horse battery staple')` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, { N, r: R, p: P })
  return ['scrypt', N, R, P, salt.toString('base64url'), hash.toString('base64url')].join('$')
}

/** Compares in constant time; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  })
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/** A hash that no password matches; used to spend equal time on unknown user names. */
export const UNMATCHABLE_HASH = `scrypt$${N}$${R}$${P}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`

/** A random password for generated accounts: 24 characters, about 143 bits. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url')
}
