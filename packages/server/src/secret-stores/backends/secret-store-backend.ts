/**
 * What every external secret store does for Desklink: read one value, now, with no cache.
 * Each backend turns its store's answers into the same coded errors: `SecretReadDenied`,
 * `SecretNotFound`, `SecretStoreUnreachable`.
 *
 * @module
 */
import type { SecretReference, SecretStoreSettings } from '@desklink/protocol'

export type ExternalReference = Exclude<SecretReference, { store: 'builtin' }>

export interface SecretStoreBackend<S extends SecretStoreSettings, R extends ExternalReference> {
  /** Reads the value the reference names. Never caches: a rotated value is read next time. */
  read(settings: S, reference: R): Promise<string>
  /** A human path for messages, e.g. `secret/apps/payroll#password`. Never a secret. */
  describe(reference: R): string
}

/** "User is not authorized to read secrets from '<path>'." as the reference words it. */
export const readDeniedMessage = (path: string): string =>
  `User is not authorized to read secrets from '${path}'.`
