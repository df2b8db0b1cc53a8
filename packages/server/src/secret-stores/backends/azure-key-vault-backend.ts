/**
 * Azure Key Vault through the official SDK (@azure/keyvault-secrets, @azure/identity), with a
 * client secret or a certificate of an Entra app registration. A new credential and client are
 * made for every read, so no token or value outlives it.
 *
 * `authorityHost` points the sign-in at another cloud or a private endpoint; with it, the SDK's
 * check that the vault's challenge names a *.vault.azure.net resource is turned off.
 *
 * @module
 */
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  type TokenCredential,
} from '@azure/identity'
import { SecretClient } from '@azure/keyvault-secrets'
import type { SecretStoreSettings } from '@desklink/protocol'

import { AppError } from '../../errors/index.ts'
import { unreachable } from '../https-json.ts'
import {
  type ExternalReference,
  readDeniedMessage,
  type SecretStoreBackend,
} from './secret-store-backend.ts'

type AzureSettings = Extract<SecretStoreSettings, { type: 'azureKeyVault' }>
type AzureReference = Extract<ExternalReference, { store: 'azureKeyVault' }>

function credentialFor(settings: AzureSettings): TokenCredential {
  const common = {
    ...(settings.authorityHost && {
      authorityHost: settings.authorityHost,
      disableInstanceDiscovery: true,
    }),
    ...(settings.caCertificate && { tlsOptions: { ca: settings.caCertificate } }),
    retryOptions: { maxRetries: 1 },
  }
  return settings.auth.method === 'clientSecret'
    ? new ClientSecretCredential(
        settings.tenantId,
        settings.clientId,
        settings.auth.clientSecret,
        common,
      )
    : new ClientCertificateCredential(
        settings.tenantId,
        settings.clientId,
        { certificate: settings.auth.certificatePem },
        common,
      )
}

export const azureKeyVaultBackend: SecretStoreBackend<AzureSettings, AzureReference> = {
  describe: (ref) => `${ref.secretName}${ref.version ? `/${ref.version}` : ''}`,
  async read(settings, ref) {
    const client = new SecretClient(settings.vaultUrl, credentialFor(settings), {
      ...(settings.authorityHost && { disableChallengeResourceVerification: true }),
      ...(settings.caCertificate && { tlsOptions: { ca: settings.caCertificate } }),
      retryOptions: { maxRetries: 1 },
    })
    try {
      const secret = await client.getSecret(
        ref.secretName,
        ref.version ? { version: ref.version } : {},
      )
      if (typeof secret.value !== 'string')
        throw new AppError('SecretNotFound', { details: { path: this.describe(ref) } })
      return secret.value
    } catch (error) {
      if (error instanceof AppError) throw error
      const status = (error as { statusCode?: number }).statusCode
      const name = (error as { name?: string }).name
      if (status === 404)
        throw new AppError('SecretNotFound', { details: { path: this.describe(ref) } })
      if (status === 403)
        throw new AppError('SecretReadDenied', {
          message: readDeniedMessage(`${settings.vaultUrl}/secrets/${ref.secretName}`),
        })
      if (
        status === 401 ||
        name === 'AuthenticationError' ||
        name === 'AuthenticationRequiredError' ||
        name === 'CredentialUnavailableError'
      ) {
        throw new AppError('SecretReadDenied', {
          message: 'Microsoft Entra refused the credentials of this store.',
          details: { reason: name },
        })
      }
      throw unreachable(settings.vaultUrl, error, status)
    }
  },
}
