/**
 * Events other domains react to when group membership changes. Connections subscribe to
 * `machineJoinedGroup`: a machine that joins a group breaks the connections that targeted it
 * alone (reference §2.2.2).
 *
 * @module
 */

export interface MachineJoinedGroup {
  readonly tenantId: string
  readonly machineId: string
  /** The machine's own group, which connections to the machine alone target. */
  readonly standaloneGroupId: string
  readonly groupId: string
}

export type MembershipListener = (event: MachineJoinedGroup) => Promise<void> | void

export interface MembershipEvents {
  onMachineJoinedGroup(listener: MembershipListener): void
  emitMachineJoinedGroup(event: MachineJoinedGroup): Promise<void>
}

export function createMembershipEvents(): MembershipEvents {
  const listeners: MembershipListener[] = []
  return {
    onMachineJoinedGroup: (listener) => void listeners.push(listener),
    async emitMachineJoinedGroup(event) {
      for (const listener of listeners) await listener(event)
    },
  }
}
