/**
 * Machines and machine groups as people and service principals manage them: registration
 * tokens, viewing, settings, deletion, groups, members and sharing. The agent's own side is in
 * `agent-service.ts`.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'

import type { MachineSettings, PrincipalType, ResourceAccess } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantStore } from '../identity/tenant-store.ts'
import type { SharedResourceType, ShareRecord, ShareStore } from '../sharing/share-store.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import { type Access, assertManage, best, type MachineAccess } from './machine-access.ts'
import {
  DEFAULT_SETTINGS,
  type GroupRecord,
  type MachineRecord,
  type MachineStore,
} from './machine-store.ts'

export const REGISTRATION_TOKEN_TTL_MS = 3_600_000

export const hashRegistrationToken = (token: string): string =>
  createHash('sha256').update(token.trim(), 'utf8').digest('base64url')

/** Tells connected agents, and the run queues, what changed. */
export interface AgentNotifier {
  /**
   * The machine's settings changed, or its group did; `left`: the target it has just left (a
   * machine group, or its own group when it joined one), whose queue may have no machine now.
   */
  machineChanged(machineId: string, left?: string): Promise<void>
  /** The machine is gone; `targets`: its group and its own group, whose queues lost it. */
  machineDeleted(machineId: string, targets: readonly string[]): void
}

export interface MachineServiceDeps {
  readonly machines: MachineStore
  readonly shares: ShareStore
  readonly tenants: Pick<TenantStore, 'findEnvironment'>
  readonly principals: Pick<PrincipalStore, 'principalExists'>
  readonly access: MachineAccess
  readonly notifier: AgentNotifier
  readonly clock: Clock
  readonly newId: IdGenerator
  readonly maxGroupMembers: number
}

export interface MachineView {
  readonly machine: MachineRecord
  readonly effectiveSettings: MachineSettings
  readonly access: Access
  readonly standaloneGroupPublicKey?: string | null
}

export interface GroupView {
  readonly group: GroupRecord
  readonly memberCount: number
  readonly access: Access
}

const notFound = () => new AppError('ResourceNotFound')

/**
 * A member's settings: its group's, but for maintenance mode, which is the group's or its own
 * (reference §2.4). What a member keeps when it leaves its group, too.
 */
const memberSettings = (group: MachineSettings, member: MachineRecord): MachineSettings => ({
  ...group,
  maintenanceMode: group.maintenanceMode || member.settings.maintenanceMode,
})

const applyPatch = (
  base: MachineSettings,
  patch: Partial<MachineSettings> | undefined,
): MachineSettings => ({
  maintenanceMode: patch?.maintenanceMode ?? base.maintenanceMode,
  slots: patch?.slots ?? base.slots,
  reuseSessions: patch?.reuseSessions ?? base.reuseSessions,
  extendedQueuePrioritization:
    patch?.extendedQueuePrioritization ?? base.extendedQueuePrioritization,
})

export function createMachineService(deps: MachineServiceDeps) {
  const { machines, shares, access, clock, newId } = deps
  const now = () => clock.now().toISOString()

  async function groupAccess(
    principal: Principal,
    group: GroupRecord,
  ): Promise<Access | undefined> {
    return access.accessTo(principal, 'machineGroup', group)
  }

  async function machineAccess(
    principal: Principal,
    machine: MachineRecord,
  ): Promise<Access | undefined> {
    const own = await access.accessTo(principal, 'machine', machine)
    if (machine.groupId === machine.standaloneGroupId) return own
    const group = await machines.findGroup(principal.tenant.id, machine.groupId)
    return best(own, group && (await groupAccess(principal, group)))
  }

  /**
   * A member runs by its group's settings, but for maintenance mode: a member in maintenance of
   * its own is skipped while the other members take the group's runs (reference §2.4), and a
   * group in maintenance puts every member in it.
   */
  async function effectiveSettings(machine: MachineRecord): Promise<MachineSettings> {
    if (machine.groupId === machine.standaloneGroupId) return machine.settings
    const group = (await machines.findGroup(machine.tenantId, machine.groupId))?.settings
    return group ? memberSettings(group, machine) : machine.settings
  }

  async function viewMachine(principal: Principal, id: string): Promise<MachineView> {
    const machine = await machines.findMachine(principal.tenant.id, id)
    const level = machine && (await machineAccess(principal, machine))
    if (!machine || !level) throw notFound()
    const standalone = await machines.findGroup(principal.tenant.id, machine.standaloneGroupId)
    return {
      machine,
      effectiveSettings: await effectiveSettings(machine),
      access: level,
      standaloneGroupPublicKey: standalone?.publicKey ?? null,
    }
  }

  async function viewGroup(principal: Principal, id: string): Promise<GroupView> {
    const group = await machines.findGroup(principal.tenant.id, id)
    const level =
      group && group.type === 'standard' ? await groupAccess(principal, group) : undefined
    if (!group || !level) throw notFound()
    return {
      group,
      memberCount: await machines.countMembers(principal.tenant.id, id),
      access: level,
    }
  }

  async function assertShareTarget(
    tenantId: string,
    type: PrincipalType,
    id: string,
  ): Promise<void> {
    if (!(await deps.principals.principalExists(tenantId, type, id))) {
      throw new AppError('InvalidRequestBody', {
        message: 'The principal does not exist in this tenant.',
        details: { field: 'principalId' },
      })
    }
  }

  async function share(
    principal: Principal,
    type: SharedResourceType,
    resourceId: string,
    input: { principalType: PrincipalType; principalId: string; access: ResourceAccess },
  ): Promise<ShareRecord> {
    await assertShareTarget(principal.tenant.id, input.principalType, input.principalId)
    const record: ShareRecord = {
      id: newId(),
      tenant_id: principal.tenant.id,
      resource_type: type,
      resource_id: resourceId,
      principal_type: input.principalType,
      principal_id: input.principalId,
      access: input.access,
      created_at: now(),
    }
    await shares.insert(record)
    return record
  }

  async function unshare(
    principal: Principal,
    type: SharedResourceType,
    resourceId: string,
    shareId: string,
  ): Promise<void> {
    if (!(await shares.delete(principal.tenant.id, type, resourceId, shareId))) throw notFound()
  }

  return {
    async createRegistrationToken(
      principal: Principal,
      environmentId: string,
    ): Promise<{ token: string; expiresAt: string }> {
      if (!(await deps.tenants.findEnvironment(principal.tenant.id, environmentId)))
        throw notFound()
      await access.assertMayCreate(principal, environmentId)
      const token = `dlr.${principal.tenant.id}.${environmentId}.${randomBytes(32).toString('base64url')}`
      const expiresAt = new Date(clock.now().getTime() + REGISTRATION_TOKEN_TTL_MS).toISOString()
      await machines.insertRegistrationToken({
        token_hash: hashRegistrationToken(token),
        tenant_id: principal.tenant.id,
        environment_id: environmentId,
        created_by_type: principal.type,
        created_by_id: principal.id,
        expires_at: expiresAt,
        used_at: null,
        machine_id: null,
        created_at: now(),
      })
      return { token, expiresAt }
    },

    async listMachines(principal: Principal, environmentId?: string): Promise<MachineView[]> {
      const views: MachineView[] = []
      for (const machine of await machines.listMachines(principal.tenant.id, { environmentId })) {
        const level = await machineAccess(principal, machine)
        if (level)
          views.push({
            machine,
            effectiveSettings: await effectiveSettings(machine),
            access: level,
          })
      }
      return views
    },

    getMachine: viewMachine,

    async updateMachine(
      principal: Principal,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        settings?: Partial<MachineSettings> | undefined
      },
    ): Promise<MachineView> {
      const { machine, access: level } = await viewMachine(principal, id)
      assertManage(level)
      const inherited = Object.keys(changes.settings ?? {}).filter((k) => k !== 'maintenanceMode')
      if (machine.groupId !== machine.standaloneGroupId) {
        if (inherited.length > 0)
          throw new AppError('SettingsInheritedFromGroup', {
            details: { groupId: machine.groupId, settings: inherited },
          })
        // A group in maintenance holds every member in it (reference §2.4).
        if (
          changes.settings?.maintenanceMode !== undefined &&
          (await machines.findGroup(principal.tenant.id, machine.groupId))?.settings.maintenanceMode
        )
          throw new AppError('SettingsInheritedFromGroup', {
            message:
              'The machine group is in maintenance, and so are its members: a member cannot be changed alone until the group is out of it.',
            details: { groupId: machine.groupId, settings: ['maintenanceMode'] },
          })
      }
      await machines.updateMachine(principal.tenant.id, id, {
        name: changes.name,
        description: changes.description,
        settings: changes.settings && applyPatch(machine.settings, changes.settings),
      })
      if (changes.settings) await deps.notifier.machineChanged(id)
      return viewMachine(principal, id)
    },

    async deleteMachine(principal: Principal, id: string): Promise<void> {
      const { machine, access: level } = await viewMachine(principal, id)
      assertManage(level)
      await machines.deleteMachine(principal.tenant.id, id)
      await machines.deleteGroup(principal.tenant.id, machine.standaloneGroupId)
      await shares.deleteAllFor(principal.tenant.id, 'machine', id)
      deps.notifier.machineDeleted(id, [machine.groupId, machine.standaloneGroupId])
    },

    async listGroups(principal: Principal, environmentId?: string): Promise<GroupView[]> {
      const views: GroupView[] = []
      for (const group of await machines.listGroups(principal.tenant.id, environmentId)) {
        const level = await groupAccess(principal, group)
        if (level)
          views.push({
            group,
            memberCount: await machines.countMembers(principal.tenant.id, group.id),
            access: level,
          })
      }
      return views
    },

    getGroup: viewGroup,

    async createGroup(
      principal: Principal,
      input: {
        environmentId: string
        name: string
        description: string
        settings?: Partial<MachineSettings> | undefined
      },
    ): Promise<GroupView> {
      if (!(await deps.tenants.findEnvironment(principal.tenant.id, input.environmentId))) {
        throw new AppError('InvalidRequestBody', {
          message: 'The environment does not exist.',
          details: { field: 'environmentId' },
        })
      }
      await access.assertMayCreate(principal, input.environmentId)
      const group: GroupRecord = {
        id: newId(),
        tenantId: principal.tenant.id,
        environmentId: input.environmentId,
        name: input.name,
        description: input.description,
        type: 'standard',
        publicKey: null,
        keyPackage: null,
        keyCreatedAt: null,
        settings: applyPatch(DEFAULT_SETTINGS, input.settings),
        ownerType: principal.type,
        ownerId: principal.id,
        createdAt: now(),
      }
      await machines.insertGroup(group)
      return viewGroup(principal, group.id)
    },

    async updateGroup(
      principal: Principal,
      id: string,
      changes: {
        name?: string | undefined
        description?: string | undefined
        settings?: Partial<MachineSettings> | undefined
      },
    ): Promise<GroupView> {
      const { group, access: level } = await viewGroup(principal, id)
      assertManage(level)
      await machines.updateGroup(principal.tenant.id, id, {
        name: changes.name,
        description: changes.description,
        settings: changes.settings && applyPatch(group.settings, changes.settings),
      })
      // Reactivating the group reactivates every member (reference §2.4); a change that leaves
      // the group as active as it was leaves its members' own maintenance alone.
      const reactivated =
        group.settings.maintenanceMode && changes.settings?.maintenanceMode === false
      if (changes.settings) {
        for (const member of await machines.listMachines(principal.tenant.id, { groupId: id })) {
          if (reactivated && member.settings.maintenanceMode)
            await machines.updateMachine(principal.tenant.id, member.id, {
              settings: { ...member.settings, maintenanceMode: false },
            })
          await deps.notifier.machineChanged(member.id)
        }
      }
      return viewGroup(principal, id)
    },

    /** Deletes the group; its members go back to their own groups, keeping the group settings. */
    async deleteGroup(principal: Principal, id: string): Promise<void> {
      const { group, access: level } = await viewGroup(principal, id)
      assertManage(level)
      const members = await machines.listMachines(principal.tenant.id, { groupId: id })
      for (const member of members) {
        await machines.updateMachine(principal.tenant.id, member.id, {
          groupId: member.standaloneGroupId,
          settings: memberSettings(group.settings, member),
        })
      }
      await machines.deleteGroup(principal.tenant.id, id)
      await shares.deleteAllFor(principal.tenant.id, 'machineGroup', id)
      for (const member of members) await deps.notifier.machineChanged(member.id, id)
    },

    async listMembers(principal: Principal, id: string): Promise<MachineView[]> {
      const { group } = await viewGroup(principal, id)
      const members = await machines.listMachines(principal.tenant.id, { groupId: id })
      return Promise.all(
        members.map(async (machine) => ({
          machine,
          effectiveSettings: memberSettings(group.settings, machine),
          access: (await machineAccess(principal, machine)) ?? 'user',
        })),
      )
    },

    async removeMember(principal: Principal, groupId: string, machineId: string): Promise<void> {
      const { group, access: level } = await viewGroup(principal, groupId)
      assertManage(level)
      const machine = await machines.findMachine(principal.tenant.id, machineId)
      if (!machine || machine.groupId !== groupId) throw notFound()
      await machines.updateMachine(principal.tenant.id, machineId, {
        groupId: machine.standaloneGroupId,
        settings: memberSettings(group.settings, machine),
      })
      await deps.notifier.machineChanged(machineId, groupId)
    },

    async listMachineShares(principal: Principal, id: string): Promise<ShareRecord[]> {
      await viewMachine(principal, id)
      return shares.list(principal.tenant.id, 'machine', id)
    },
    async shareMachine(
      principal: Principal,
      id: string,
      input: { principalType: PrincipalType; principalId: string; access: ResourceAccess },
    ) {
      const { machine, access: level } = await viewMachine(principal, id)
      assertManage(level)
      if (await machines.hasCyberArkApplication(principal.tenant.id, machine.standaloneGroupId)) {
        throw new AppError('CyberArkOnSharedResource')
      }
      return share(principal, 'machine', id, input)
    },
    async unshareMachine(principal: Principal, id: string, shareId: string): Promise<void> {
      assertManage((await viewMachine(principal, id)).access)
      await unshare(principal, 'machine', id, shareId)
    },
    async listGroupShares(principal: Principal, id: string): Promise<ShareRecord[]> {
      await viewGroup(principal, id)
      return shares.list(principal.tenant.id, 'machineGroup', id)
    },
    async shareGroup(
      principal: Principal,
      id: string,
      input: { principalType: PrincipalType; principalId: string; access: ResourceAccess },
    ) {
      assertManage((await viewGroup(principal, id)).access)
      if (await machines.hasCyberArkApplication(principal.tenant.id, id))
        throw new AppError('CyberArkOnSharedResource')
      return share(principal, 'machineGroup', id, input)
    },
    async unshareGroup(principal: Principal, id: string, shareId: string): Promise<void> {
      assertManage((await viewGroup(principal, id)).access)
      await unshare(principal, 'machineGroup', id, shareId)
    },

    effectiveSettings,
    machineAccess,
    groupAccess,
  }
}

export type MachineService = ReturnType<typeof createMachineService>
