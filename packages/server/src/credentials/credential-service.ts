/**
 * Credentials: named references to secrets, per environment (reference §1.6, §2.7).
 *
 * - Built-in secrets are sealed at once: to the chosen machine group's public key for
 *   connection credentials (only member machines can open them), with the master key for flow
 *   credentials. The plaintext is dropped.
 * - External secrets (Vault, Key Vault, CyberArk) stay in their store; only the reference is
 *   kept. Creating one checks that the store lets us read the secret now ("User is not authorized
 *   to read secrets from '<path>'" otherwise). CyberArk values are read by the machines
 *   themselves, so there is no server-side check for them.
 * - No response ever carries a secret. Username and secret reference never change after
 *   creation; name, description and sharing do.
 * - Sharing: co-owner (use, edit, delete, share), user (use), user-can-share (use, share).
 *
 * @module
 */
import type { CredentialAccess, PrincipalType, SecretReference } from '@desklink/protocol'
import { sealToGroup } from '@desklink/protocol'
import type { Kysely, Selectable } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import {
  type Access,
  assertManage,
  assertShare,
  type MachineAccess,
} from '../machines/machine-access.ts'
import type { MachineService } from '../machines/machine-service.ts'
import {
  describeReference,
  type ExternalReference,
  readFromStore,
  type SecretStoreService,
} from '../secret-stores/index.ts'
import type { SecretBox } from '../secrets/index.ts'
import type { ShareRecord, ShareStore } from '../sharing/share-store.ts'
import type { CredentialTable, Database } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'

export type CredentialRow = Selectable<CredentialTable>

/** What is stored for the secret: the reference, with a built-in value only in sealed form. */
export type StoredSecret =
  | { store: 'builtin'; sealedTo: 'group'; groupId: string; sealed: string }
  | { store: 'builtin'; sealedTo: 'masterKey'; sealed: string }
  | ExternalReference

export type StoredUsername = { value: string } | { fromStore: ExternalReference }

export interface CredentialView {
  readonly row: CredentialRow
  readonly username: StoredUsername
  readonly secret: StoredSecret
  readonly access: Access
}

/** The reference as shown: where the secret lives, never a value or sealed blob. */
export function publicSecret(secret: StoredSecret): Record<string, unknown> {
  if (secret.store !== 'builtin') return { ...secret }
  return secret.sealedTo === 'group'
    ? { store: 'builtin', groupId: secret.groupId }
    : { store: 'builtin' }
}

export function createCredentialService(deps: {
  db: Kysely<Database>
  secretBox: SecretBox
  secretStores: SecretStoreService
  machines: Pick<MachineService, 'getGroup' | 'getMachine'>
  access: MachineAccess
  shares: ShareStore
  principals: Pick<PrincipalStore, 'principalExists'>
  clock: Clock
  newId: IdGenerator
  isUniqueViolation: (error: unknown) => boolean
  /** A credential deleted with force: the connections that used it can no longer connect. */
  credentialDeleted?: (tenantId: string, credentialId: string) => Promise<void>
}) {
  const { db } = deps
  const now = () => deps.clock.now().toISOString()

  async function view(principal: Principal, id: string): Promise<CredentialView> {
    const row = await db
      .selectFrom('credentials')
      .selectAll()
      .where('tenant_id', '=', principal.tenant.id)
      .where('id', '=', id)
      .executeTakeFirst()
    const access =
      row &&
      (await deps.access.accessTo(principal, 'credential', {
        id: row.id,
        environmentId: row.environment_id,
        ownerType: row.owner_type,
        ownerId: row.owner_id,
      }))
    if (!row || !access) throw new AppError('ResourceNotFound')
    return {
      row,
      username: JSON.parse(row.username) as StoredUsername,
      secret: JSON.parse(row.secret_ref) as StoredSecret,
      access,
    }
  }

  /** Reads the reference now as a check; the value is dropped at once. */
  async function assertReadable(
    tenantId: string,
    environmentId: string,
    reference: ExternalReference,
  ): Promise<void> {
    if (reference.store === 'cyberArkCcp') {
      await deps.secretStores.settingsOf(tenantId, environmentId, reference.storeId)
      return
    }
    const settings = await deps.secretStores.settingsOf(tenantId, environmentId, reference.storeId)
    await readFromStore(settings, reference)
  }

  /** The public key of the group a built-in connection secret is sealed to. */
  async function groupKeyFor(
    principal: Principal,
    environmentId: string,
    groupId: string,
  ): Promise<string> {
    let publicKey: string | null = null
    let groupEnvironment: string | undefined
    try {
      const { group } = await deps.machines.getGroup(principal, groupId)
      publicKey = group.publicKey
      groupEnvironment = group.environmentId
    } catch {
      // A machine's own group is addressed through the machine.
      const standalone = await db
        .selectFrom('machine_groups')
        .select(['public_key', 'environment_id'])
        .where('tenant_id', '=', principal.tenant.id)
        .where('id', '=', groupId)
        .where('type', '=', 'standalone')
        .executeTakeFirst()
      const machine = await db
        .selectFrom('machines')
        .select('id')
        .where('standalone_group_id', '=', groupId)
        .executeTakeFirst()
      if (standalone && machine) {
        await deps.machines.getMachine(principal, machine.id)
        publicKey = standalone.public_key
        groupEnvironment = standalone.environment_id
      }
    }
    if (groupEnvironment !== environmentId) {
      throw new AppError('InvalidRequestBody', {
        message: 'The machine group does not exist in this environment.',
        details: { field: 'secret.groupId' },
      })
    }
    if (!publicKey) {
      throw new AppError('InvalidRequestBody', {
        message: 'The machine group has no key yet: a machine must join it first.',
        details: { field: 'secret.groupId' },
      })
    }
    return publicKey
  }

  /** The connections that take their identity from a credential, by name. */
  const connectionsUsing = (tenantId: string, credentialId: string) =>
    db
      .selectFrom('connections')
      .select(['id', 'name'])
      .where('tenant_id', '=', tenantId)
      .where('credential_id', '=', credentialId)
      .orderBy('name')
      .execute()

  return {
    async create(
      principal: Principal,
      environmentId: string,
      input: {
        name: string
        description: string
        usage: 'connection' | 'flow'
        username: { value: string } | { fromStore: ExternalReference }
        secret: SecretReference
      },
    ): Promise<CredentialView> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const id = deps.newId()
      let secret: StoredSecret
      if (input.secret.store === 'builtin') {
        if (input.usage === 'connection') {
          if (!input.secret.groupId) {
            throw new AppError('InvalidRequestBody', {
              message:
                'A built-in connection secret is sealed to a machine group: give secret.groupId.',
              details: { field: 'secret.groupId' },
            })
          }
          const publicKey = await groupKeyFor(principal, environmentId, input.secret.groupId)
          secret = {
            store: 'builtin',
            sealedTo: 'group',
            groupId: input.secret.groupId,
            sealed: await sealToGroup(publicKey, input.secret.value, `credential:${id}`),
          }
        } else {
          secret = {
            store: 'builtin',
            sealedTo: 'masterKey',
            sealed: deps.secretBox.seal(input.secret.value, `credential:${id}`),
          }
        }
      } else {
        await assertReadable(principal.tenant.id, environmentId, input.secret)
        secret = input.secret
      }
      if ('fromStore' in input.username)
        await assertReadable(principal.tenant.id, environmentId, input.username.fromStore)
      const at = now()
      const row: CredentialRow = {
        id,
        tenant_id: principal.tenant.id,
        environment_id: environmentId,
        name: input.name,
        description: input.description,
        usage: input.usage,
        username: JSON.stringify(input.username),
        secret_ref: JSON.stringify(secret),
        owner_type: principal.type,
        owner_id: principal.id,
        created_at: at,
        updated_at: at,
      }
      try {
        await db.insertInto('credentials').values(row).execute()
      } catch (error) {
        if (deps.isUniqueViolation(error)) throw new AppError('NameAlreadyInUse')
        throw error
      }
      return view(principal, id)
    },

    async list(principal: Principal, environmentId: string): Promise<CredentialView[]> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const rows = await db
        .selectFrom('credentials')
        .select('id')
        .where('tenant_id', '=', principal.tenant.id)
        .where('environment_id', '=', environmentId)
        .orderBy('name')
        .execute()
      const views: CredentialView[] = []
      for (const { id } of rows) {
        try {
          views.push(await view(principal, id))
        } catch {
          // Not shared with the caller: not listed.
        }
      }
      return views
    },

    get: view,

    async update(
      principal: Principal,
      id: string,
      changes: Record<string, unknown>,
    ): Promise<CredentialView> {
      if ('username' in changes || 'secret' in changes || 'usage' in changes)
        throw new AppError('CredentialReferenceImmutable')
      const { access } = await view(principal, id)
      assertManage(access)
      const name = typeof changes.name === 'string' ? changes.name : undefined
      const description = typeof changes.description === 'string' ? changes.description : undefined
      try {
        await db
          .updateTable('credentials')
          .set({
            updated_at: now(),
            ...(name !== undefined && { name }),
            ...(description !== undefined && { description }),
          })
          .where('tenant_id', '=', principal.tenant.id)
          .where('id', '=', id)
          .execute()
      } catch (error) {
        if (deps.isUniqueViolation(error)) throw new AppError('NameAlreadyInUse')
        throw error
      }
      return view(principal, id)
    },

    /**
     * Refused while connections use it (they would fail at their next run), unless `force`:
     * those connections then say they lost their credential, until they get another identity.
     */
    async delete(principal: Principal, id: string, { force = false } = {}): Promise<void> {
      assertManage((await view(principal, id)).access)
      const users = await connectionsUsing(principal.tenant.id, id)
      if (users.length > 0 && !force)
        throw new AppError('CredentialInUse', {
          details: { connections: users },
        })
      if (users.length > 0) await deps.credentialDeleted?.(principal.tenant.id, id)
      await db
        .deleteFrom('credentials')
        .where('tenant_id', '=', principal.tenant.id)
        .where('id', '=', id)
        .execute()
      await deps.shares.deleteAllFor(principal.tenant.id, 'credential', id)
    },

    /** Checks, without returning anything of it, that the secret can be read now. */
    async test(principal: Principal, id: string): Promise<{ readable: true; source: string }> {
      const { row, secret, username } = await view(principal, id)
      if ('fromStore' in username)
        await assertReadable(principal.tenant.id, row.environment_id, username.fromStore)
      if (secret.store === 'builtin') return { readable: true, source: 'builtin' }
      await assertReadable(principal.tenant.id, row.environment_id, secret)
      return { readable: true, source: describeReference(secret) }
    },

    async listShares(principal: Principal, id: string): Promise<ShareRecord[]> {
      await view(principal, id)
      return deps.shares.list(principal.tenant.id, 'credential', id)
    },
    async share(
      principal: Principal,
      id: string,
      input: { principalType: PrincipalType; principalId: string; access: CredentialAccess },
    ): Promise<ShareRecord> {
      const { access } = await view(principal, id)
      assertShare(access)
      // A user who may share passes on use (and sharing), never more than it has itself.
      if (input.access === 'coOwner' && (access === 'user' || access === 'userCanShare')) {
        throw new AppError('Forbidden', { details: { requiredAccess: 'coOwner' } })
      }
      if (
        !(await deps.principals.principalExists(
          principal.tenant.id,
          input.principalType,
          input.principalId,
        ))
      ) {
        throw new AppError('InvalidRequestBody', {
          message: 'The principal does not exist in this tenant.',
          details: { field: 'principalId' },
        })
      }
      const record: ShareRecord = {
        id: deps.newId(),
        tenant_id: principal.tenant.id,
        resource_type: 'credential',
        resource_id: id,
        principal_type: input.principalType,
        principal_id: input.principalId,
        access: input.access,
        created_at: now(),
      }
      await deps.shares.insert(record)
      return record
    },
    async unshare(principal: Principal, id: string, shareId: string): Promise<void> {
      // Taking access away is the owners' decision.
      assertManage((await view(principal, id)).access)
      if (!(await deps.shares.delete(principal.tenant.id, 'credential', id, shareId)))
        throw new AppError('ResourceNotFound')
    },

    /** Connections that use the credential ("Show dependencies"), for those who manage it. */
    async dependencies(
      principal: Principal,
      id: string,
    ): Promise<{ connections: { id: string; name: string }[] }> {
      assertManage((await view(principal, id)).access)
      return { connections: await connectionsUsing(principal.tenant.id, id) }
    },
  }
}

export type CredentialService = ReturnType<typeof createCredentialService>
