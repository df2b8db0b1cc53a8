/**
 * Sealing to a machine group's key with HPKE (RFC 9180): DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256, AES-256-GCM, base mode. The server, the CLI and the portal seal; only machines
 * holding the group private key open. Keys travel as base64url of their raw 32 bytes; a sealed
 * value is `<enc>.<ciphertext>`, both base64url.
 *
 * The work is synchronous (`node:crypto`, see `hpke.ts`): the server seals on every run
 * request. The async functions stay for their callers; the `Sync` ones skip the promise.
 *
 * @module
 */
import {
  AES_256_GCM,
  hpkeBase,
  openBase,
  sealBase,
  x25519KeyPair,
  x25519PublicKeyOf,
} from './hpke.ts'

const SUITE = hpkeBase(AES_256_GCM, Buffer.from('desklink group seal v1', 'utf8'))

const BASE64URL = /^[A-Za-z0-9_-]*$/
const b64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8')

/** Strict base64url: Buffer's decoder skips stray characters, which would hide a mangled value. */
function bytes(text: string, what: string): Buffer {
  if (!BASE64URL.test(text)) throw new TypeError(`${what} is not base64url`)
  return Buffer.from(text, 'base64url')
}

export interface GroupKeyPair {
  /** base64url raw X25519 public key (32 bytes). */
  readonly publicKey: string
  /** base64url raw X25519 private key (32 bytes). Keep it on the machine. */
  readonly privateKey: string
}

/** Generates a group (or standalone machine) key pair. */
export async function generateGroupKeyPair(): Promise<GroupKeyPair> {
  const pair = x25519KeyPair()
  return Promise.resolve({ publicKey: b64(pair.publicKey), privateKey: b64(pair.privateKey) })
}

/** The public key that belongs to a private key: lets a machine check a key package. */
export async function publicKeyOf(privateKey: string): Promise<string> {
  return Promise.resolve(b64(x25519PublicKeyOf(bytes(privateKey, 'The private key'))))
}

/** Seals `plaintext` to the holder of `publicKey`; `context` binds it to its use (AAD). */
export function sealToGroupSync(publicKey: string, plaintext: string, context: string): string {
  const recipient = bytes(publicKey, 'The public key')
  const { enc, ct } = sealBase(SUITE, recipient, utf8(plaintext), utf8(context))
  return `${b64(enc)}.${b64(ct)}`
}

/** Seals `plaintext` to the holder of `publicKey`; `context` binds it to its use (AAD). */
export async function sealToGroup(
  publicKey: string,
  plaintext: string,
  context: string,
): Promise<string> {
  return Promise.resolve(sealToGroupSync(publicKey, plaintext, context))
}

/** Opens what `sealToGroup` sealed; throws when the key or the context does not match. */
export function openWithGroupKeySync(privateKey: string, sealed: string, context: string): string {
  const parts = sealed.split('.')
  const [enc, ct] = parts
  if (parts.length !== 2 || !enc || !ct) throw new TypeError('Not a sealed value')
  const plaintext = openBase(
    SUITE,
    bytes(privateKey, 'The private key'),
    bytes(enc, 'The sealed value'),
    bytes(ct, 'The sealed value'),
    utf8(context),
  )
  return plaintext.toString('utf8')
}

/** Opens what `sealToGroup` sealed; throws when the key or the context does not match. */
export async function openWithGroupKey(
  privateKey: string,
  sealed: string,
  context: string,
): Promise<string> {
  return Promise.resolve(openWithGroupKeySync(privateKey, sealed, context))
}
