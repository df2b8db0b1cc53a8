import { Aes128Gcm, Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { describe, expect, it } from 'vitest'

import {
  AES_128_GCM,
  AES_256_GCM,
  type HpkeAead,
  hpkeBase,
  openBase,
  sealBase,
  sealWithEphemeralKey,
  x25519KeyPair,
  x25519PublicKeyOf,
} from './hpke.ts'

const hex = (text: string) => Buffer.from(text, 'hex')
const toArrayBuffer = (view: Uint8Array): ArrayBuffer =>
  view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer

describe('HPKE base mode, RFC 9180 Appendix A.1.1 (X25519, HKDF-SHA256, AES-128-GCM)', () => {
  const vector = {
    info: hex('4f6465206f6e2061204772656369616e2055726e'),
    skEm: hex('52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736'),
    pkEm: hex('37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431'),
    skRm: hex('4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8'),
    pkRm: hex('3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d'),
    keyScheduleContext: hex(
      '00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07' +
        'cb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449',
    ),
    // Encryption sequence number 0.
    pt: hex('4265617574792069732074727574682c20747275746820626561757479'),
    aad: hex('436f756e742d30'),
    ct: hex(
      'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a',
    ),
  }
  const base = hpkeBase(AES_128_GCM, vector.info)

  it('derives the public keys from the private keys', () => {
    expect(x25519PublicKeyOf(vector.skEm).toString('hex')).toBe(vector.pkEm.toString('hex'))
    expect(x25519PublicKeyOf(vector.skRm).toString('hex')).toBe(vector.pkRm.toString('hex'))
  })

  it('computes the key schedule context', () => {
    expect(base.keyScheduleContext.toString('hex')).toBe(vector.keyScheduleContext.toString('hex'))
  })

  it('seals to the known enc and ciphertext', () => {
    const { enc, ct } = sealWithEphemeralKey(base, vector.skEm, vector.pkRm, vector.pt, vector.aad)
    expect(enc.toString('hex')).toBe(vector.pkEm.toString('hex'))
    expect(ct.toString('hex')).toBe(vector.ct.toString('hex'))
  })

  it('opens the known ciphertext', () => {
    const pt = openBase(base, vector.skRm, vector.pkEm, vector.ct, vector.aad)
    expect(pt.toString('hex')).toBe(vector.pt.toString('hex'))
  })
})

const suites: [string, HpkeAead, CipherSuite][] = [
  [
    'AES-256-GCM',
    AES_256_GCM,
    new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes256Gcm(),
    }),
  ],
  [
    'AES-128-GCM',
    AES_128_GCM,
    new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes128Gcm(),
    }),
  ],
]

describe.each(suites)('interoperates with @hpke/core (%s)', (_name, aead, theirs) => {
  const info = Buffer.from('interop info')
  const aad = Buffer.from('interop aad')
  const plaintext = Buffer.from('a secret worth sealing \u{1F511}')
  const base = hpkeBase(aead, info)

  it('what we seal, @hpke/core opens', async () => {
    const recipient = x25519KeyPair()
    const { enc, ct } = sealBase(base, recipient.publicKey, plaintext, aad)
    const recipientKey = await theirs.kem.deserializePrivateKey(toArrayBuffer(recipient.privateKey))
    const opened = await theirs.open(
      { recipientKey, enc: toArrayBuffer(enc), info: toArrayBuffer(info) },
      toArrayBuffer(ct),
      toArrayBuffer(aad),
    )
    expect(Buffer.from(opened).toString()).toBe(plaintext.toString())
  })

  it('what @hpke/core seals, we open', async () => {
    const pair = await theirs.kem.generateKeyPair()
    const publicKey = new Uint8Array(await theirs.kem.serializePublicKey(pair.publicKey))
    const privateKey = new Uint8Array(await theirs.kem.serializePrivateKey(pair.privateKey))
    expect(Buffer.from(x25519PublicKeyOf(privateKey)).equals(Buffer.from(publicKey))).toBe(true)
    const { enc, ct } = await theirs.seal(
      { recipientPublicKey: pair.publicKey, info: toArrayBuffer(info) },
      toArrayBuffer(plaintext),
      toArrayBuffer(aad),
    )
    const opened = openBase(base, privateKey, new Uint8Array(enc), new Uint8Array(ct), aad)
    expect(opened.toString()).toBe(plaintext.toString())
  })
})

describe('HPKE base mode refuses', () => {
  const base = hpkeBase(AES_256_GCM, Buffer.from('info'))
  const recipient = x25519KeyPair()
  const aad = Buffer.from('aad')
  const sealed = sealBase(base, recipient.publicKey, Buffer.from('secret'), aad)
  const flip = (bytes: Buffer, at: number) => {
    const copy = Buffer.from(bytes)
    copy[at] = copy[at] ^ 1
    return copy
  }

  it('opens only with the right key, aad, info, enc and ciphertext', () => {
    const { enc, ct } = sealed
    expect(openBase(base, recipient.privateKey, enc, ct, aad).toString()).toBe('secret')
    expect(() => openBase(base, x25519KeyPair().privateKey, enc, ct, aad)).toThrow(/open failed/)
    expect(() => openBase(base, recipient.privateKey, enc, ct, Buffer.from('aae'))).toThrow(
      /open failed/,
    )
    const otherInfo = hpkeBase(AES_256_GCM, Buffer.from('infp'))
    expect(() => openBase(otherInfo, recipient.privateKey, enc, ct, aad)).toThrow(/open failed/)
    expect(() => openBase(base, recipient.privateKey, flip(enc, 5), ct, aad)).toThrow()
    for (const at of [0, ct.length - 17, ct.length - 1]) {
      expect(() => openBase(base, recipient.privateKey, enc, flip(ct, at), aad)).toThrow(
        /open failed/,
      )
    }
  })

  it('malformed keys, enc and ciphertexts', () => {
    const { enc, ct } = sealed
    expect(() => openBase(base, recipient.privateKey, enc.subarray(1), ct, aad)).toThrow(TypeError)
    expect(() => openBase(base, recipient.privateKey, enc, ct.subarray(0, 15), aad)).toThrow(
      TypeError,
    )
    expect(() => openBase(base, recipient.privateKey.subarray(1), enc, ct, aad)).toThrow(TypeError)
    expect(() => sealBase(base, recipient.publicKey.subarray(1), ct, aad)).toThrow(TypeError)
  })

  it('a low-order public key (all-zero shared secret, RFC 9180 §7.1.4)', () => {
    expect(() => sealBase(base, Buffer.alloc(32), Buffer.from('secret'), aad)).toThrow()
    expect(() => openBase(base, recipient.privateKey, Buffer.alloc(32), sealed.ct, aad)).toThrow()
  })

  it('to reuse an ephemeral key: every seal has its own enc', () => {
    const again = sealBase(base, recipient.publicKey, Buffer.from('secret'), aad)
    expect(again.enc.equals(sealed.enc)).toBe(false)
    expect(again.ct.equals(sealed.ct)).toBe(false)
  })
})
