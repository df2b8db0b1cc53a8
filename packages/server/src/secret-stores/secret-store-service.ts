/**
 * Secret stores of an environment: where Vault, Key Vault and CyberArk CCP are and how to sign
 * in to them. The whole settings object is sealed with the master key (AAD = store id) before it
 * is written; only a summary without secrets is stored in the clear and ever shown.
 * Environment administrators manage stores; anyone with a role in the environment sees them.
 *
 * @module
 */
import type { SecretStoreSettings } from '@desklink/protocol'
import type { Kysely, Selectable } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { MachineAccess } from '../machines/machine-access.ts'
import type { SecretBox } from '../secrets/index.ts'
import type { Database, SecretStoreTable } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'

export type SecretStoreRow = Selectable<SecretStoreTable>

/** The parts of the settings that are safe to show. */
export function summarize(settings: SecretStoreSettings): Record<string, string> {
  switch (settings.type) {
    case 'hashicorpVault':
      return {
        address: settings.address,
        auth: settings.auth.method,
        ...(settings.namespace && { namespace: settings.namespace }),
      }
    case 'azureKeyVault':
      return {
        vaultUrl: settings.vaultUrl,
        tenantId: settings.tenantId,
        clientId: settings.clientId,
        auth: settings.auth.method,
      }
    case 'cyberArkCcp':
      return {
        url: settings.url,
        appId: settings.appId,
        safe: settings.safe,
        folder: settings.folder,
      }
  }
}

export function createSecretStoreService(deps: {
  db: Kysely<Database>
  secretBox: SecretBox
  access: MachineAccess
  clock: Clock
  newId: IdGenerator
  isUniqueViolation: (error: unknown) => boolean
}) {
  const { db, secretBox } = deps

  const assertVisible = (principal: Principal, environmentId: string) =>
    deps.access.assertEnvironmentVisible(principal, environmentId)
  async function assertAdmin(principal: Principal, environmentId: string): Promise<void> {
    if (principal.isTenantAdmin) return
    if (!(await deps.access.rolesIn(principal, environmentId)).includes('EnvironmentAdmin')) {
      throw new AppError('Forbidden', { details: { requiredRole: 'EnvironmentAdmin' } })
    }
  }
  async function find(tenantId: string, id: string): Promise<SecretStoreRow | undefined> {
    return db
      .selectFrom('secret_stores')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst()
  }

  return {
    async create(
      principal: Principal,
      environmentId: string,
      input: { name: string; settings: SecretStoreSettings },
    ): Promise<SecretStoreRow> {
      const environment = await db
        .selectFrom('environments')
        .select('id')
        .where('tenant_id', '=', principal.tenant.id)
        .where('id', '=', environmentId)
        .executeTakeFirst()
      if (!environment) throw new AppError('ResourceNotFound')
      await assertAdmin(principal, environmentId)
      const id = deps.newId()
      const row: SecretStoreRow = {
        id,
        tenant_id: principal.tenant.id,
        environment_id: environmentId,
        name: input.name,
        type: input.settings.type,
        settings_sealed: secretBox.seal(JSON.stringify(input.settings), `secret-store:${id}`),
        summary: JSON.stringify(summarize(input.settings)),
        created_at: deps.clock.now().toISOString(),
      }
      try {
        await db.insertInto('secret_stores').values(row).execute()
      } catch (error) {
        if (deps.isUniqueViolation(error)) throw new AppError('NameAlreadyInUse')
        throw error
      }
      return row
    },
    async list(principal: Principal, environmentId: string): Promise<SecretStoreRow[]> {
      await assertVisible(principal, environmentId)
      return db
        .selectFrom('secret_stores')
        .selectAll()
        .where('tenant_id', '=', principal.tenant.id)
        .where('environment_id', '=', environmentId)
        .orderBy('name')
        .execute()
    },
    async get(principal: Principal, id: string): Promise<SecretStoreRow> {
      const row = await find(principal.tenant.id, id)
      if (!row) throw new AppError('ResourceNotFound')
      await assertVisible(principal, row.environment_id)
      return row
    },
    async delete(principal: Principal, id: string): Promise<void> {
      const row = await this.get(principal, id)
      await assertAdmin(principal, row.environment_id)
      const marker = `%"storeId":"${id}"%`
      const user = await db
        .selectFrom('credentials')
        .select('id')
        .where('tenant_id', '=', principal.tenant.id)
        .where((eb) => eb.or([eb('secret_ref', 'like', marker), eb('username', 'like', marker)]))
        .executeTakeFirst()
      if (user) throw new AppError('SecretStoreInUse', { details: { credentialId: user.id } })
      await db
        .deleteFrom('secret_stores')
        .where('tenant_id', '=', principal.tenant.id)
        .where('id', '=', id)
        .execute()
    },
    /** The full settings, secrets included, for a read on the server. Never returned by the API. */
    async settingsOf(
      tenantId: string,
      environmentId: string,
      id: string,
    ): Promise<SecretStoreSettings> {
      const row = await find(tenantId, id)
      if (!row || row.environment_id !== environmentId) {
        throw new AppError('InvalidRequestBody', {
          message: 'The secret store does not exist in this environment.',
          details: { field: 'storeId' },
        })
      }
      return JSON.parse(
        secretBox.open(row.settings_sealed, `secret-store:${id}`),
      ) as SecretStoreSettings
    },
  }
}

export type SecretStoreService = ReturnType<typeof createSecretStoreService>
