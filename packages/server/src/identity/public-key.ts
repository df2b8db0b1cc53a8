/**
 * Reads the public key a service principal proves itself with (`private_key_jwt`, RFC 7523):
 * an SPKI PEM, an X.509 certificate PEM, or a public JWK. Only keys jose verifies with the
 * algorithms we accept are taken.
 *
 * @module
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'

import { calculateJwkThumbprint, type JWK } from 'jose'

import { AppError } from '../errors/index.ts'

/** Algorithms a client assertion may use, by key type. */
export const ASSERTION_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const

export interface ParsedPublicKey {
  readonly jwk: JWK
  readonly thumbprint: string
}

function algorithmFor(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails
  switch (key.asymmetricKeyType) {
    case 'ec':
      return details?.namedCurve === 'prime256v1' ? 'ES256' : undefined
    case 'ed25519':
      return 'EdDSA'
    case 'rsa':
      return (details?.modulusLength ?? 0) >= 2048 ? 'RS256' : undefined
    default:
      return undefined
  }
}

/** @throws AppError `InvalidCertificate` when the input is no usable public key. */
export async function parsePublicKey(
  input: string | Record<string, unknown>,
): Promise<ParsedPublicKey> {
  let key: KeyObject
  try {
    key =
      typeof input === 'string'
        ? createPublicKey(input)
        : createPublicKey({ key: input as JsonWebKey, format: 'jwk' })
  } catch (cause) {
    throw new AppError('InvalidCertificate', { cause })
  }
  if (key.type !== 'public') throw new AppError('InvalidCertificate')
  const alg = algorithmFor(key)
  if (!alg) {
    throw new AppError('InvalidCertificate', {
      details: {
        reason: 'key type not accepted',
        accepted: ['EC P-256', 'Ed25519', 'RSA >= 2048'],
      },
    })
  }
  const exported = key.export({ format: 'jwk' }) as JWK
  const thumbprint = await calculateJwkThumbprint(exported)
  return { jwk: { ...exported, kid: thumbprint, alg }, thumbprint }
}
