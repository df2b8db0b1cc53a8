import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import * as root from '../index.ts'
import {
  generateGroupKeyPair,
  openWithGroupKey,
  openWithGroupKeySync,
  publicKeyOf,
  sealToGroup,
  sealToGroupSync,
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
    expect(group.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(group.privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await publicKeyOf(group.privateKey)).toBe(group.publicKey)
    expect(await publicKeyOf((await generateGroupKeyPair()).privateKey)).not.toBe(group.publicKey)
  })

  it('seals and opens synchronously, interchangeably with the async functions', async () => {
    const group = await generateGroupKeyPair()
    const sealed = sealToGroupSync(group.publicKey, 'inputs', 'run:1')
    expect(sealed).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]+$/)
    expect(await openWithGroupKey(group.privateKey, sealed, 'run:1')).toBe('inputs')
    const sealedAsync = await sealToGroup(group.publicKey, 'inputs', 'run:1')
    expect(openWithGroupKeySync(group.privateKey, sealedAsync, 'run:1')).toBe('inputs')
    expect(() => openWithGroupKeySync(group.privateKey, sealed, 'run:2')).toThrow()
  })

  it('round-trips any text', async () => {
    const group = await generateGroupKeyPair()
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (plaintext, context) => {
        const sealed = sealToGroupSync(group.publicKey, plaintext, context)
        expect(openWithGroupKeySync(group.privateKey, sealed, context)).toBe(plaintext)
      }),
      { numRuns: 200 },
    )
  })

  it('refuses altered and malformed sealed values', async () => {
    const group = await generateGroupKeyPair()
    const sealed = sealToGroupSync(group.publicKey, 'secret', 'ctx')
    const [enc = '', ct = ''] = sealed.split('.')
    const other = (text: string) =>
      text.startsWith('A') ? `B${text.slice(1)}` : `A${text.slice(1)}`
    const open = (value: string) => () => openWithGroupKeySync(group.privateKey, value, 'ctx')
    expect(open(`${enc}.${other(ct)}`)).toThrow(/open failed/)
    expect(open(`${other(enc)}.${ct}`)).toThrow()
    for (const malformed of [
      '',
      'secret',
      `${enc}.`,
      `.${ct}`,
      `${enc}.${ct}.x`,
      `${enc}.${ct}=`,
    ]) {
      expect(open(malformed)).toThrow(TypeError)
    }
    expect(open(`${enc.slice(0, -1)}.${ct}`)).toThrow(TypeError)
    expect(open(`${enc}.${ct.slice(0, 20)}`)).toThrow(TypeError)
    await expect(openWithGroupKey(group.privateKey, 'secret', 'ctx')).rejects.toThrow(TypeError)
    expect(() => sealToGroupSync(group.publicKey.slice(1), 'x', 'ctx')).toThrow(TypeError)
    expect(() => sealToGroupSync(`${group.publicKey}!`, 'x', 'ctx')).toThrow(TypeError)
    await expect(sealToGroup('not a key', 'x', 'ctx')).rejects.toThrow(TypeError)
    await expect(publicKeyOf('short')).rejects.toThrow(TypeError)
  })

  it('is exported from the package root, sync variants included', () => {
    expect(root.sealToGroupSync).toBe(sealToGroupSync)
    expect(root.openWithGroupKeySync).toBe(openWithGroupKeySync)
    expect(root.sealToGroup).toBe(sealToGroup)
    expect(root.openWithGroupKey).toBe(openWithGroupKey)
  })
})

/**
 * The previous implementation, on @hpke/core, verbatim in effect: values sealed by it are held
 * by machines today, and machines not yet updated open what the server seals now.
 */
const legacy = (() => {
  const suite = new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  })
  const b64 = (data: ArrayBuffer) => Buffer.from(data).toString('base64url')
  const buf = (text: string) => {
    const view = Buffer.from(text, 'base64url')
    return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)
  }
  const utf8 = (text: string) => new TextEncoder().encode(text).buffer
  const info = utf8('desklink group seal v1')
  return {
    async generateGroupKeyPair() {
      const pair = await suite.kem.generateKeyPair()
      return {
        publicKey: b64(await suite.kem.serializePublicKey(pair.publicKey)),
        privateKey: b64(await suite.kem.serializePrivateKey(pair.privateKey)),
      }
    },
    async seal(publicKey: string, plaintext: string, context: string) {
      const recipientPublicKey = await suite.kem.deserializePublicKey(buf(publicKey))
      const { ct, enc } = await suite.seal(
        { recipientPublicKey, info },
        utf8(plaintext),
        utf8(context),
      )
      return `${b64(enc)}.${b64(ct)}`
    },
    async open(privateKey: string, sealed: string, context: string) {
      const [enc = '', ct = ''] = sealed.split('.')
      const recipientKey = await suite.kem.deserializePrivateKey(buf(privateKey))
      const pt = await suite.open({ recipientKey, enc: buf(enc), info }, buf(ct), utf8(context))
      return new TextDecoder().decode(pt)
    },
  }
})()

describe('group seals stay compatible with the @hpke/core implementation', () => {
  it('what we seal to a key we made, it opens', async () => {
    const group = await generateGroupKeyPair()
    const sealed = sealToGroupSync(group.publicKey, 'machine password \u00e9', 'connection:7')
    expect(await legacy.open(group.privateKey, sealed, 'connection:7')).toBe(
      'machine password \u00e9',
    )
    await expect(legacy.open(group.privateKey, sealed, 'connection:8')).rejects.toThrow()
  })

  it('what it sealed to a key it made, we open', async () => {
    const group = await legacy.generateGroupKeyPair()
    expect(await publicKeyOf(group.privateKey)).toBe(group.publicKey)
    const sealed = await legacy.seal(group.publicKey, 'run inputs {"a":1}', 'run:42')
    expect(openWithGroupKeySync(group.privateKey, sealed, 'run:42')).toBe('run inputs {"a":1}')
    expect(() => openWithGroupKeySync(group.privateKey, sealed, 'run:43')).toThrow()
  })
})
