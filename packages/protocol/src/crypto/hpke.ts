/**
 * HPKE (RFC 9180) base mode, single shot, for DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256 with
 * AES-128-GCM or AES-256-GCM, on synchronous `node:crypto` primitives. A seal costs a key
 * generation, one Diffie-Hellman and a handful of HMACs; a WebCrypto-based library spends more
 * than that again on async job overhead, which matters where the server seals per request.
 *
 * Only what sealing one message needs is here: no PSK or auth modes, no sequence numbers beyond
 * 0, no exporter. Keys are raw 32-byte X25519 keys.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  randomBytes,
} from 'node:crypto'

export interface HpkeAead {
  /** The AEAD id of RFC 9180 §7.3. */
  readonly id: number
  readonly cipher: 'aes-128-gcm' | 'aes-256-gcm'
  /** Nk, the key length in bytes. */
  readonly keyLength: number
}

export const AES_128_GCM: HpkeAead = { id: 0x0001, cipher: 'aes-128-gcm', keyLength: 16 }
export const AES_256_GCM: HpkeAead = { id: 0x0002, cipher: 'aes-256-gcm', keyLength: 32 }

const KEM_ID = 0x0020 // DHKEM(X25519, HKDF-SHA256)
const KDF_ID = 0x0001 // HKDF-SHA256
const MODE_BASE = 0x00
/** Npk = Nsk = Nenc = Nsecret for DHKEM(X25519, HKDF-SHA256). */
const KEY_LENGTH = 32
const NONCE_LENGTH = 12
const TAG_LENGTH = 16

const EMPTY = Buffer.alloc(0)
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8')
const i2osp2 = (value: number): Buffer => Buffer.from([value >> 8, value & 0xff])

const KEM_SUITE_ID = Buffer.concat([utf8('KEM'), i2osp2(KEM_ID)])

/** LabeledExtract (RFC 9180 §4): HKDF-Extract over "HPKE-v1" || suite_id || label || ikm. */
function labeledExtract(suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt)
    .update(utf8('HPKE-v1'))
    .update(suiteId)
    .update(utf8(label))
    .update(ikm)
    .digest()
}

/** LabeledExpand (RFC 9180 §4); every length used here fits one SHA-256 block. */
function labeledExpand(
  suiteId: Buffer,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Buffer {
  if (length > 32) throw new RangeError('labeledExpand: longer than one HKDF-SHA256 block')
  return createHmac('sha256', prk)
    .update(i2osp2(length))
    .update(utf8('HPKE-v1'))
    .update(suiteId)
    .update(utf8(label))
    .update(info)
    .update(Buffer.from([1]))
    .digest()
    .subarray(0, length)
}

/*
 * Raw keys go through JWK: on Node 20 a DER (SPKI/PKCS#8) import costs ten times as much, and
 * there is no raw import yet. For a private key Node derives the public half from `d` and only
 * checks that `x` is a string. Keys are never made with generateKeyPair(Sync): on Node 20 a JWK
 * export of such a key can deadlock when GC collects the generation job during the export (its
 * destructor takes the key's lock, which the export holds); random bytes are an X25519 key.
 */
function privateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== KEY_LENGTH) throw new TypeError('An X25519 private key is 32 bytes')
  const d = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url')
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' })
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== KEY_LENGTH) throw new TypeError('An X25519 public key is 32 bytes')
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url')
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' })
}

function rawPublicKey(privateKey: KeyObject): Buffer {
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' })
  if (!x) throw new TypeError('Not an X25519 key')
  return Buffer.from(x, 'base64url')
}

/** The raw public key of a raw X25519 private key. */
export function x25519PublicKeyOf(privateKey: Uint8Array): Buffer {
  return rawPublicKey(privateKeyObject(privateKey))
}

/** A new X25519 key pair, raw. */
export function x25519KeyPair(): { privateKey: Buffer; publicKey: Buffer } {
  const privateKey = randomBytes(KEY_LENGTH)
  // Clamped as OpenSSL's own key generation leaves it; X25519 clamps on use anyway.
  privateKey[0] &= 248
  privateKey[31] &= 127
  privateKey[31] |= 64
  return { privateKey, publicKey: x25519PublicKeyOf(privateKey) }
}

/**
 * The parts of the key schedule fixed by the AEAD and `info`, computed once: the suite id and
 * key_schedule_context = mode || psk_id_hash || info_hash (base mode: empty psk and psk_id).
 */
export interface HpkeBase {
  readonly aead: HpkeAead
  readonly suiteId: Buffer
  readonly keyScheduleContext: Buffer
}

export function hpkeBase(aead: HpkeAead, info: Uint8Array): HpkeBase {
  const suiteId = Buffer.concat([utf8('HPKE'), i2osp2(KEM_ID), i2osp2(KDF_ID), i2osp2(aead.id)])
  const keyScheduleContext = Buffer.concat([
    Buffer.from([MODE_BASE]),
    labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY),
    labeledExtract(suiteId, EMPTY, 'info_hash', info),
  ])
  return { aead, suiteId, keyScheduleContext }
}

/** DHKEM ExtractAndExpand with kem_context = enc || pkRm (RFC 9180 §4.1). */
function sharedSecret(dh: Buffer, enc: Buffer, recipientPublicKey: Buffer): Buffer {
  const prk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dh)
  const kemContext = Buffer.concat([enc, recipientPublicKey])
  return labeledExpand(KEM_SUITE_ID, prk, 'shared_secret', kemContext, KEY_LENGTH)
}

/** KeySchedule for base mode (RFC 9180 §5.1); sequence 0, so the nonce is base_nonce itself. */
function keyAndNonce(base: HpkeBase, shared: Buffer): { key: Buffer; nonce: Buffer } {
  const secret = labeledExtract(base.suiteId, shared, 'secret', EMPTY)
  const context = base.keyScheduleContext
  return {
    key: labeledExpand(base.suiteId, secret, 'key', context, base.aead.keyLength),
    nonce: labeledExpand(base.suiteId, secret, 'base_nonce', context, NONCE_LENGTH),
  }
}

/**
 * SealBase with a given ephemeral private key, for known-answer tests. Anything else calls
 * `sealBase`: reusing an ephemeral key reuses the AEAD key and nonce.
 */
export function sealWithEphemeralKey(
  base: HpkeBase,
  ephemeralPrivateKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { enc: Buffer; ct: Buffer } {
  const pkR = Buffer.from(recipientPublicKey)
  const skE = privateKeyObject(ephemeralPrivateKey)
  const enc = rawPublicKey(skE)
  // OpenSSL refuses a low-order public key (all-zero DH output), as RFC 9180 §7.1.4 requires.
  const dh = diffieHellman({ privateKey: skE, publicKey: publicKeyObject(pkR) })
  const { key, nonce } = keyAndNonce(base, sharedSecret(dh, enc, pkR))
  const cipher = createCipheriv(base.aead.cipher, key, nonce)
  cipher.setAAD(aad)
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  return { enc, ct }
}

/** Single-shot SealBase (RFC 9180 §6.1): `ct` is the ciphertext with its 16-byte tag appended. */
export function sealBase(
  base: HpkeBase,
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { enc: Buffer; ct: Buffer } {
  const ephemeral = randomBytes(KEY_LENGTH)
  return sealWithEphemeralKey(base, ephemeral, recipientPublicKey, plaintext, aad)
}

/** Single-shot OpenBase; throws unless the key, `enc`, `ct` and `aad` are what was sealed. */
export function openBase(
  base: HpkeBase,
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  ct: Uint8Array,
  aad: Uint8Array,
): Buffer {
  if (enc.length !== KEY_LENGTH) throw new TypeError('HPKE enc is 32 bytes')
  if (ct.length < TAG_LENGTH) throw new TypeError('HPKE ciphertext shorter than its tag')
  const skR = privateKeyObject(recipientPrivateKey)
  const encBytes = Buffer.from(enc)
  const dh = diffieHellman({ privateKey: skR, publicKey: publicKeyObject(encBytes) })
  const { key, nonce } = keyAndNonce(base, sharedSecret(dh, encBytes, rawPublicKey(skR)))
  const decipher = createDecipheriv(base.aead.cipher, key, nonce, { authTagLength: TAG_LENGTH })
  decipher.setAAD(aad)
  decipher.setAuthTag(ct.subarray(ct.length - TAG_LENGTH))
  const body = decipher.update(ct.subarray(0, ct.length - TAG_LENGTH))
  try {
    return Buffer.concat([body, decipher.final()])
  } catch (cause) {
    throw new Error('HPKE open failed: wrong key, wrong context or altered ciphertext', { cause })
  }
}
