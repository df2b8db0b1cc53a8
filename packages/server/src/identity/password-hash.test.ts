import { describe, expect, it } from 'vitest'

import { hashPassword, UNMATCHABLE_HASH, verifyPassword } from './password-hash.ts'

describe('password hashing', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('correct horse battery staple')
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$/)
    expect(stored).not.toContain('correct horse')
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true)
    expect(await verifyPassword('correct horse battery stapler', stored)).toBe(false)
  })

  it('salts every hash', async () => {
    expect(await hashPassword('same')).not.toBe(await hashPassword('same'))
  })

  it('never matches the placeholder hash or a malformed one', async () => {
    expect(await verifyPassword('', UNMATCHABLE_HASH)).toBe(false)
    expect(await verifyPassword('x', 'plain-text')).toBe(false)
  })
})
