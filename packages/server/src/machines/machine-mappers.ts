/**
 * Machine and group records to API shapes.
 *
 * @module
 */
import type { Machine, MachineGroup, Share } from '@desklink/protocol'

import type { ShareRecord } from '../sharing/share-store.ts'
import type { GroupView, MachineView } from './machine-service.ts'

/**
 * A machine counts as connected while it holds a channel and has been heard from within three
 * heartbeat intervals; a server that stopped without recording disconnects cannot mislead.
 */
export function toApiMachine(view: MachineView, heartbeatIntervalMs: number, now: Date): Machine {
  const { machine } = view
  const fresh =
    machine.lastHeartbeatAt !== null &&
    now.getTime() - Date.parse(machine.lastHeartbeatAt) < heartbeatIntervalMs * 3
  const connected = machine.connected && fresh
  return {
    id: machine.id,
    environmentId: machine.environmentId,
    name: machine.name,
    description: machine.description,
    standaloneGroupId: machine.standaloneGroupId,
    standaloneGroupPublicKey: view.standaloneGroupPublicKey ?? null,
    groupId: machine.groupId,
    hostname: machine.hostname,
    os: machine.os,
    agentVersion: machine.agentVersion,
    status: connected ? 'connected' : 'disconnected',
    lastHeartbeatAt: machine.lastHeartbeatAt,
    settings: machine.settings,
    effectiveSettings: view.effectiveSettings,
    sessions: connected ? machine.sessions : [],
    ownerType: machine.ownerType,
    ownerId: machine.ownerId,
    access: view.access === 'userCanShare' ? 'user' : view.access,
    createdAt: machine.createdAt,
  }
}

export function toApiGroup(view: GroupView, maxMembers: number): MachineGroup {
  const { group } = view
  return {
    id: group.id,
    environmentId: group.environmentId,
    name: group.name,
    description: group.description,
    type: group.type,
    publicKey: group.publicKey,
    keyCreatedAt: group.keyCreatedAt,
    memberCount: view.memberCount,
    maxMembers,
    settings: group.settings,
    ownerType: group.ownerType,
    ownerId: group.ownerId,
    access: view.access === 'userCanShare' ? 'user' : view.access,
    createdAt: group.createdAt,
  }
}

export const toApiShare = (share: ShareRecord): Share => ({
  id: share.id,
  principalType: share.principal_type,
  principalId: share.principal_id,
  access: share.access === 'coOwner' ? 'coOwner' : 'user',
  createdAt: share.created_at,
})
