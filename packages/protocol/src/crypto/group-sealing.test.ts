import { describe, expect, it } from 'vitest'

import {
  generateGroupKeyPair,
  openWithGroupKey,
  publicKeyOf,
  sealToGroup,
} from './group-sealing.ts'

describe('sealing to a group key (HPKE X25519 / HKDF-SHA256 / AES-256-GCM)', () => {
  it('opens with the group private key and the same context only', async () => {
    const group = await generateGroupKeyPair()
    const sealed = await sealToGroup(group.publicKey, 'machine password', 'connection:1')
    expect(sealed).not.toContain('machine password')
    expect(await openWithGroupKey(group.privateKey, sealed, 'connection:1')).toBe(
      'machine password',
    )
    await expect(openWithGroupKey(group.privateKey, sealed, 'connection:2')).rejects.toThrow()
    const other = await generateGroupKeyPair()
    await expect(openWithGroupKey(other.privateKey, sealed, 'connection:1')).rejects.toThrow()
  })

  it('derives the public key from the private key', async () => {
    const group = await generateGroupKeyPair()
    expect(await publicKeyOf(group.privateKey)).toBe(group.publicKey)
  })
})
