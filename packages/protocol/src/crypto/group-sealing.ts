/**
 * Sealing to a machine group's key with HPKE (RFC 9180): DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256, AES-256-GCM, base mode. The server, the CLI and the portal seal; only machines
 * holding the group private key open. Keys travel as base64url of their raw 32 bytes; a sealed
 * value is `<enc>.<ciphertext>`, both base64url.
 *
 * @module
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
})

const b64 = (bytes: ArrayBuffer | Uint8Array): string =>
  Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('base64url')
const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64url'))
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
const toBuffer = (view: Uint8Array): ArrayBuffer =>
  view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer

export interface GroupKeyPair {
  /** base64url raw X25519 public key (32 bytes). */
  readonly publicKey: string
  /** base64url raw X25519 private key (32 bytes). Keep it on the machine. */
  readonly privateKey: string
}

/** Generates a group (or standalone machine) key pair. */
export async function generateGroupKeyPair(): Promise<GroupKeyPair> {
  const pair = await suite.kem.generateKeyPair()
  return {
    publicKey: b64(await suite.kem.serializePublicKey(pair.publicKey)),
    privateKey: b64(await suite.kem.serializePrivateKey(pair.privateKey)),
  }
}

/** The public key that belongs to a private key: lets a machine check a key package. */
export async function publicKeyOf(privateKey: string): Promise<string> {
  const key = await suite.kem.deserializePrivateKey(toBuffer(bytes(privateKey)))
  const jwk = (await crypto.subtle.exportKey('jwk', key)) as { x?: string }
  if (!jwk.x) throw new TypeError('Not an X25519 private key')
  return jwk.x
}

/** Seals `plaintext` to the holder of `publicKey`; `context` binds it to its use (AAD). */
export async function sealToGroup(
  publicKey: string,
  plaintext: string,
  context: string,
): Promise<string> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(toBuffer(bytes(publicKey)))
  const { ct, enc } = await suite.seal(
    { recipientPublicKey, info: toBuffer(utf8('desklink group seal v1')) },
    toBuffer(utf8(plaintext)),
    toBuffer(utf8(context)),
  )
  return `${b64(enc)}.${b64(ct)}`
}

/** Opens what `sealToGroup` sealed; throws when the key or the context does not match. */
export async function openWithGroupKey(
  privateKey: string,
  sealed: string,
  context: string,
): Promise<string> {
  const [enc, ct] = sealed.split('.')
  if (!enc || !ct) throw new TypeError('Not a sealed value')
  const recipientKey = await suite.kem.deserializePrivateKey(toBuffer(bytes(privateKey)))
  const plaintext = await suite.open(
    { recipientKey, enc: toBuffer(bytes(enc)), info: toBuffer(utf8('desklink group seal v1')) },
    toBuffer(bytes(ct)),
    toBuffer(utf8(context)),
  )
  return new TextDecoder().decode(plaintext)
}
