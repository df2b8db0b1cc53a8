/**
 * Run-time resolution: what a run sends to the machine that will use a credential. Nothing is
 * cached: every resolution reads the store again, so a rotated value takes effect at the next
 * use with no edit, and a store that is down fails the run with a coded error rather than
 * serving an old value.
 *
 * The secret always travels sealed to the executing machine's group key (HPKE). CyberArk
 * values are not read here at all: the machine fetches them from CCP with the application's
 * client certificate, which is itself sealed to the group key.
 *
 * @module
 */
import { sealToGroup } from '@desklink/protocol'
import type { Kysely } from 'kysely'

import { AppError } from '../errors/index.ts'
import { readFromStore, type SecretStoreService } from '../secret-stores/index.ts'
import type { SecretBox } from '../secrets/index.ts'
import type { Database } from '../storage/index.ts'
import type { StoredSecret, StoredUsername } from './credential-service.ts'

export type ResolvedCredential =
  | {
      readonly kind: 'sealed'
      readonly username: string
      /** Sealed to the group key; open with `openWithGroupKey(key, sealedSecret, context)`. */
      readonly sealedSecret: string
      readonly context: string
    }
  | {
      readonly kind: 'cyberArk'
      readonly username: string | null
      readonly request: {
        url: string
        appId: string
        safe: string
        folder: string
        object: string
        caCertificate?: string
      }
      /** The application's client certificate and key, sealed to the group key. */
      readonly sealedClientCertificate: string
      readonly context: string
    }

export function createCredentialResolver(deps: {
  db: Kysely<Database>
  secretBox: SecretBox
  secretStores: SecretStoreService
}) {
  const { db } = deps
  return {
    async resolveForGroup(input: {
      tenantId: string
      credentialId: string
      groupId: string
    }): Promise<ResolvedCredential> {
      const row = await db
        .selectFrom('credentials')
        .selectAll()
        .where('tenant_id', '=', input.tenantId)
        .where('id', '=', input.credentialId)
        .executeTakeFirst()
      if (!row) throw new AppError('ResourceNotFound')
      const group = await db
        .selectFrom('machine_groups')
        .select(['public_key', 'environment_id'])
        .where('tenant_id', '=', input.tenantId)
        .where('id', '=', input.groupId)
        .executeTakeFirst()
      if (!group?.public_key || group.environment_id !== row.environment_id)
        throw new AppError('ResourceNotFound')
      const publicKey = group.public_key
      const username = JSON.parse(row.username) as StoredUsername
      const secret = JSON.parse(row.secret_ref) as StoredSecret
      const settingsOf = (storeId: string) =>
        deps.secretStores.settingsOf(input.tenantId, row.environment_id, storeId)

      const resolvedUsername =
        'value' in username
          ? username.value
          : username.fromStore.store === 'cyberArkCcp'
            ? null
            : await readFromStore(await settingsOf(username.fromStore.storeId), username.fromStore)

      if (secret.store === 'cyberArkCcp') {
        const settings = await settingsOf(secret.storeId)
        if (settings.type !== 'cyberArkCcp')
          throw new AppError('SecretStoreUnreachable', {
            message: 'The credential names a store of another type.',
          })
        const application = await db
          .selectFrom('cyberark_applications')
          .selectAll()
          .where('tenant_id', '=', input.tenantId)
          .where('group_id', '=', input.groupId)
          .executeTakeFirst()
        if (!application) {
          throw new AppError('SecretReadDenied', {
            message: 'No CyberArk application is configured on this machine or group.',
          })
        }
        return {
          kind: 'cyberArk',
          username: resolvedUsername,
          request: {
            url: settings.url,
            appId: application.app_id,
            safe: settings.safe,
            folder: settings.folder,
            object: secret.object,
            ...(settings.caCertificate && { caCertificate: settings.caCertificate }),
          },
          sealedClientCertificate: application.sealed_certificate,
          context: `cyberark:${input.groupId}`,
        }
      }
      if (resolvedUsername === null)
        throw new AppError('SecretNotFound', {
          message: 'The username comes from CyberArk but the secret does not.',
        })

      if (secret.store === 'builtin' && secret.sealedTo === 'group') {
        if (secret.groupId !== input.groupId) {
          throw new AppError('SecretReadDenied', {
            message: 'This credential is sealed to another machine group.',
            details: { groupId: secret.groupId },
          })
        }
        return {
          kind: 'sealed',
          username: resolvedUsername,
          sealedSecret: secret.sealed,
          context: `credential:${row.id}`,
        }
      }
      const value =
        secret.store === 'builtin'
          ? deps.secretBox.open(secret.sealed, `credential:${row.id}`)
          : await readFromStore(await settingsOf(secret.storeId), secret)
      const context = `resolved:${row.id}`
      return {
        kind: 'sealed',
        username: resolvedUsername,
        sealedSecret: await sealToGroup(publicKey, value, context),
        context,
      }
    },
  }
}

export type CredentialResolver = ReturnType<typeof createCredentialResolver>
