/**
 * The machine's keys: an Ed25519 identity key made on the machine at registration (only its
 * public half is sent), and the assertions it signs to authenticate to the server.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'

import { MACHINE_ASSERTION_TYP, machineAssertionAudience } from '@desklink/protocol'
import { SignJWT } from 'jose'

/** A new identity key: PKCS#8 PEM to keep, base64url raw public key to send. */
export function generateIdentityKey(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  if (!jwk.x) throw new Error('Ed25519 public key without x')
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: jwk.x,
  }
}

export function publicKeyOfIdentity(privateKeyPem: string): string {
  const jwk = createPublicKey(createPrivateKey(privateKeyPem)).export({ format: 'jwk' })
  if (!jwk.x) throw new Error('Ed25519 public key without x')
  return jwk.x
}

/** Signs a single-use assertion, valid five minutes, for the server at `serverUrl`. */
export async function signMachineAssertion(
  privateKeyPem: string,
  machineId: string,
  serverUrl: string,
): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: MACHINE_ASSERTION_TYP })
    .setIssuer(machineId)
    .setSubject(machineId)
    .setAudience(machineAssertionAudience(serverUrl))
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(createPrivateKey(privateKeyPem))
}
