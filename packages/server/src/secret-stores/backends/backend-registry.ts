/**
 * The server-side backends by store type, resolved once here. CyberArk CCP has none: the
 * machine itself fetches from CCP with its client certificate (reference §1.7).
 *
 * @module
 */
import type { SecretStoreSettings } from '@desklink/protocol'

import { AppError } from '../../errors/index.ts'
import { azureKeyVaultBackend } from './azure-key-vault-backend.ts'
import { hashicorpVaultBackend } from './hashicorp-vault-backend.ts'
import type { ExternalReference } from './secret-store-backend.ts'

/** Reads a reference with the matching store's settings; the types must agree. */
export async function readFromStore(
  settings: SecretStoreSettings,
  reference: ExternalReference,
): Promise<string> {
  if (settings.type !== reference.store) {
    throw new AppError('InvalidRequestBody', {
      message: `The store is a ${settings.type}, not a ${reference.store}.`,
      details: { field: 'storeId' },
    })
  }
  if (settings.type === 'hashicorpVault' && reference.store === 'hashicorpVault')
    return hashicorpVaultBackend.read(settings, reference)
  if (settings.type === 'azureKeyVault' && reference.store === 'azureKeyVault')
    return azureKeyVaultBackend.read(settings, reference)
  throw new TypeError(`No server-side reader for ${reference.store}: the machine reads it`)
}

export function describeReference(reference: ExternalReference): string {
  if (reference.store === 'hashicorpVault') return hashicorpVaultBackend.describe(reference)
  if (reference.store === 'azureKeyVault') return azureKeyVaultBackend.describe(reference)
  return `${reference.object}`
}
