/**
 * Machines, machine groups and registration tokens. Every query is scoped by tenant except
 * the agent's own lookups by machine id, which are authenticated by the machine's key.
 *
 * @module
 */
import type { MachineSettings, SessionInfo } from '@desklink/protocol'
import type { Kysely, Selectable } from 'kysely'

import type {
  Database,
  MachineGroupTable,
  MachineTable,
  RegistrationTokenTable,
} from '../storage/index.ts'

export const DEFAULT_SETTINGS: MachineSettings = Object.freeze({
  maintenanceMode: false,
  slots: 1,
  reuseSessions: false,
  extendedQueuePrioritization: false,
})

export interface MachineRecord {
  readonly id: string
  readonly tenantId: string
  readonly environmentId: string
  readonly name: string
  readonly description: string
  readonly standaloneGroupId: string
  readonly groupId: string
  readonly identityPublicKey: string
  readonly hostname: string
  readonly os: string
  readonly agentVersion: string
  readonly settings: MachineSettings
  readonly sessions: SessionInfo[]
  readonly connected: boolean
  readonly lastHeartbeatAt: string | null
  readonly ownerType: 'user' | 'servicePrincipal'
  readonly ownerId: string
  readonly createdAt: string
}

export interface GroupRecord {
  readonly id: string
  readonly tenantId: string
  readonly environmentId: string
  readonly name: string
  readonly description: string
  readonly type: 'standalone' | 'standard'
  readonly publicKey: string | null
  readonly keyPackage: string | null
  readonly keyCreatedAt: string | null
  readonly settings: MachineSettings
  readonly ownerType: 'user' | 'servicePrincipal'
  readonly ownerId: string
  readonly createdAt: string
}

export type RegistrationTokenRecord = Selectable<RegistrationTokenTable>

const toMachine = (row: Selectable<MachineTable>): MachineRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  environmentId: row.environment_id,
  name: row.name,
  description: row.description,
  standaloneGroupId: row.standalone_group_id,
  groupId: row.group_id,
  identityPublicKey: row.identity_public_key,
  hostname: row.hostname,
  os: row.os,
  agentVersion: row.agent_version,
  settings: JSON.parse(row.settings) as MachineSettings,
  sessions: JSON.parse(row.sessions) as SessionInfo[],
  connected: Number(row.connected) === 1,
  lastHeartbeatAt: row.last_heartbeat_at,
  ownerType: row.owner_type,
  ownerId: row.owner_id,
  createdAt: row.created_at,
})

const toGroup = (row: Selectable<MachineGroupTable>): GroupRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  environmentId: row.environment_id,
  name: row.name,
  description: row.description,
  type: row.type,
  publicKey: row.public_key,
  keyPackage: row.key_package,
  keyCreatedAt: row.key_created_at,
  settings: JSON.parse(row.settings) as MachineSettings,
  ownerType: row.owner_type,
  ownerId: row.owner_id,
  createdAt: row.created_at,
})

export function createMachineStore(db: Kysely<Database>) {
  return {
    async insertGroup(group: GroupRecord): Promise<void> {
      await db
        .insertInto('machine_groups')
        .values({
          id: group.id,
          tenant_id: group.tenantId,
          environment_id: group.environmentId,
          name: group.name,
          description: group.description,
          type: group.type,
          public_key: group.publicKey,
          key_package: group.keyPackage,
          key_created_at: group.keyCreatedAt,
          settings: JSON.stringify(group.settings),
          owner_type: group.ownerType,
          owner_id: group.ownerId,
          created_at: group.createdAt,
        })
        .execute()
    },
    async findGroup(tenantId: string, id: string): Promise<GroupRecord | undefined> {
      const row = await db
        .selectFrom('machine_groups')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toGroup(row)
    },
    async listGroups(tenantId: string, environmentId?: string): Promise<GroupRecord[]> {
      let query = db
        .selectFrom('machine_groups')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('type', '=', 'standard')
      if (environmentId) query = query.where('environment_id', '=', environmentId)
      return (await query.orderBy('name').execute()).map(toGroup)
    },
    async updateGroup(
      tenantId: string,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        settings?: MachineSettings | undefined
      },
    ): Promise<void> {
      if (
        changes.name === undefined &&
        changes.description === undefined &&
        changes.settings === undefined
      )
        return
      await db
        .updateTable('machine_groups')
        .set({
          ...(changes.name !== undefined && { name: changes.name }),
          ...(changes.description !== undefined && { description: changes.description }),
          ...(changes.settings !== undefined && { settings: JSON.stringify(changes.settings) }),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },
    /** Sets the group key only if none exists yet; false when another machine was first. */
    async setGroupKeyIfAbsent(
      tenantId: string,
      id: string,
      publicKey: string,
      keyPackage: string,
      at: string,
    ): Promise<boolean> {
      const result = await db
        .updateTable('machine_groups')
        .set({ public_key: publicKey, key_package: keyPackage, key_created_at: at })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('public_key', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
    async deleteGroup(tenantId: string, id: string): Promise<void> {
      await db
        .deleteFrom('machine_groups')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },
    async countMembers(tenantId: string, groupId: string): Promise<number> {
      const row = await db
        .selectFrom('machines')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('group_id', '=', groupId)
        .executeTakeFirstOrThrow()
      return Number(row.n)
    },

    async insertMachine(machine: MachineRecord): Promise<void> {
      await db
        .insertInto('machines')
        .values({
          id: machine.id,
          tenant_id: machine.tenantId,
          environment_id: machine.environmentId,
          name: machine.name,
          description: machine.description,
          standalone_group_id: machine.standaloneGroupId,
          group_id: machine.groupId,
          identity_public_key: machine.identityPublicKey,
          hostname: machine.hostname,
          os: machine.os,
          agent_version: machine.agentVersion,
          settings: JSON.stringify(machine.settings),
          sessions: JSON.stringify(machine.sessions),
          connected: machine.connected ? 1 : 0,
          last_heartbeat_at: machine.lastHeartbeatAt,
          owner_type: machine.ownerType,
          owner_id: machine.ownerId,
          created_at: machine.createdAt,
        })
        .execute()
    },
    async findMachine(tenantId: string, id: string): Promise<MachineRecord | undefined> {
      const row = await db
        .selectFrom('machines')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toMachine(row)
    },
    /** For agent authentication only: the key in the row authenticates the caller. */
    async findMachineForAgent(id: string): Promise<MachineRecord | undefined> {
      const row = await db
        .selectFrom('machines')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toMachine(row)
    },
    async listMachines(
      tenantId: string,
      filter: { environmentId?: string | undefined; groupId?: string | undefined } = {},
    ): Promise<MachineRecord[]> {
      let query = db.selectFrom('machines').selectAll().where('tenant_id', '=', tenantId)
      if (filter.environmentId) query = query.where('environment_id', '=', filter.environmentId)
      if (filter.groupId) query = query.where('group_id', '=', filter.groupId)
      return (await query.orderBy('name').orderBy('id').execute()).map(toMachine)
    },
    async updateMachine(
      tenantId: string,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        settings?: MachineSettings | undefined
        groupId?: string | undefined
      },
    ): Promise<void> {
      await db
        .updateTable('machines')
        .set({
          ...(changes.name !== undefined && { name: changes.name }),
          ...(changes.description !== undefined && { description: changes.description }),
          ...(changes.settings !== undefined && { settings: JSON.stringify(changes.settings) }),
          ...(changes.groupId !== undefined && { group_id: changes.groupId }),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },
    async recordConnection(
      id: string,
      connected: boolean,
      facts: { hostname?: string; os?: string; agentVersion?: string; at: string },
    ): Promise<void> {
      await db
        .updateTable('machines')
        .set({
          connected: connected ? 1 : 0,
          ...(connected && { last_heartbeat_at: facts.at }),
          ...(facts.hostname !== undefined && { hostname: facts.hostname }),
          ...(facts.os !== undefined && { os: facts.os }),
          ...(facts.agentVersion !== undefined && { agent_version: facts.agentVersion }),
          ...(!connected && { sessions: '[]' }),
        })
        .where('id', '=', id)
        .execute()
    },
    async deleteMachine(tenantId: string, id: string): Promise<void> {
      await db
        .deleteFrom('machines')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
    },

    /**
     * Moves a machine from its own group into `groupId` only if it is still in its own group
     * and the group has room; false otherwise. The count and the move are one statement, so two
     * machines joining at once cannot both take the last place.
     */
    async joinGroupIfRoom(
      tenantId: string,
      machineId: string,
      groupId: string,
      maxMembers: number,
    ): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        // Joins of one group take turns: each first writes the group's row, which holds the next
        // until it commits (on PostgreSQL; SQLite writes one at a time anyway). Without it, two
        // joins would each count the members before the other's and both take the last place.
        await trx
          .updateTable('machine_groups')
          .set((eb) => ({ name: eb.ref('name') }))
          .where('tenant_id', '=', tenantId)
          .where('id', '=', groupId)
          .execute()
        const result = await trx
          .updateTable('machines')
          .set({ group_id: groupId })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', machineId)
          .whereRef('group_id', '=', 'standalone_group_id')
          .where((eb) =>
            eb(
              eb
                .selectFrom('machines as members')
                .select((m) => m.fn.countAll<number>().as('n'))
                .where('members.group_id', '=', groupId),
              '<',
              maxMembers,
            ),
          )
          .executeTakeFirst()
        return Number(result.numUpdatedRows) === 1
      })
    },
    /** True when a CyberArk application is configured on the group (it may not be shared then). */
    async hasCyberArkApplication(tenantId: string, groupId: string): Promise<boolean> {
      const row = await db
        .selectFrom('cyberark_applications')
        .select('group_id')
        .where('tenant_id', '=', tenantId)
        .where('group_id', '=', groupId)
        .executeTakeFirst()
      return row !== undefined
    },
    async insertRegistrationToken(token: RegistrationTokenRecord): Promise<void> {
      await db.insertInto('registration_tokens').values(token).execute()
    },
    async findRegistrationToken(tokenHash: string): Promise<RegistrationTokenRecord | undefined> {
      return db
        .selectFrom('registration_tokens')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst()
    },
    /** Marks the token used; true only for the one registration that used it. */
    async useRegistrationToken(tokenHash: string, machineId: string, at: string): Promise<boolean> {
      const result = await db
        .updateTable('registration_tokens')
        .set({ used_at: at, machine_id: machineId })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

export type MachineStore = ReturnType<typeof createMachineStore>
