/**
 * Turns what the server sends for a credential into a username and secret on the machine,
 * in memory only: opens values sealed to the group key, and for CyberArk opens the client
 * certificate and asks CCP itself.
 *
 * @module
 */
import { openWithGroupKey } from '@desklink/protocol'

import { AgentError } from '../agent-error.ts'
import { type CcpRequest, fetchFromCyberArk } from './cyberark-ccp.ts'

export type DeliveredCredential =
  | { kind: 'sealed'; username: string; sealedSecret: string; context: string }
  | {
      kind: 'cyberArk'
      username: string | null
      request: CcpRequest
      sealedClientCertificate: string
      context: string
    }
  | { kind: 'signIn'; accessToken: string }

export async function openCredential(
  delivered: Exclude<DeliveredCredential, { kind: 'signIn' }>,
  groupPrivateKey: string,
): Promise<{ username: string; secret: string }> {
  if (delivered.kind === 'sealed') {
    return {
      username: delivered.username,
      secret: await openWithGroupKey(groupPrivateKey, delivered.sealedSecret, delivered.context),
    }
  }
  const certificate = await openWithGroupKey(
    groupPrivateKey,
    delivered.sealedClientCertificate,
    delivered.context,
  )
  const account = await fetchFromCyberArk(delivered.request, certificate)
  const username = delivered.username ?? account.userName
  if (!username)
    throw new AgentError('SecretNotFound', {
      message: 'CyberArk returned no user name for the account.',
    })
  return { username, secret: account.content }
}
