/**
 * What each machine of a target can take now, as placement sees it (`MachinePicture`): whether
 * it is connected and has said what it holds, its effective settings, its live sessions (from
 * its heartbeats) and the runs it holds. Settings are read once and kept until they may have
 * changed; sessions come from heartbeats only.
 *
 * @module
 */
import type { MachineSettings, SessionInfo } from '@desklink/protocol'

import type { MachineHoldings } from './machine-holdings.ts'
import type { MachinePicture } from './placement.ts'
import type { Member } from './target-members.ts'

/** Settings of a machine that has none stored (it was deleted meanwhile). */
const DEFAULT_SETTINGS: MachineSettings = {
  maintenanceMode: false,
  slots: 1,
  reuseSessions: false,
  extendedQueuePrioritization: false,
}

/** How many runs the machines could take now, at most: free slots and open sessions. */
export function capacityOf(pictures: readonly MachinePicture[]): number {
  let room = 0
  for (const p of pictures) {
    if (!p.connected || p.settings.maintenanceMode) continue
    room += Math.max(0, p.settings.slots - p.unattendedRunning) + p.sessions.length
  }
  return room
}

export function createMachinePictures(deps: {
  holdings: MachineHoldings
  isConnected(machineId: string): boolean
  settingsOf(machineId: string): Promise<MachineSettings | undefined>
}) {
  const { holdings } = deps
  /** Live sessions per machine, from its heartbeats. */
  const sessionsOf = new Map<string, readonly SessionInfo[]>()
  /** Machines whose first heartbeat since connecting is awaited (to reconcile offers). */
  const awaitingFirstHeartbeat = new Set<string>()
  /** When each machine's current connection was made. */
  const connectedAt = new Map<string, string>()
  /** Effective settings per machine, dropped whenever they may have changed. */
  const settingsCache = new Map<string, MachineSettings>()

  async function settingsOf(machineId: string): Promise<MachineSettings> {
    let settings = settingsCache.get(machineId)
    if (!settings) {
      settings = (await deps.settingsOf(machineId)) ?? DEFAULT_SETTINGS
      settingsCache.set(machineId, settings)
    }
    return settings
  }

  return {
    /** What each machine of a target can take now. */
    async of(members: readonly Member[]): Promise<MachinePicture[]> {
      const held = await holdings.of(members.map((m) => m.id))
      const pictures: MachinePicture[] = []
      for (const machine of members) {
        const mine = held.get(machine.id) ?? []
        pictures.push({
          machineId: machine.id,
          machineName: machine.name,
          // A machine that just (re)connected is placed on once its first heartbeat said what
          // it holds.
          connected: deps.isConnected(machine.id) && !awaitingFirstHeartbeat.has(machine.id),
          settings: await settingsOf(machine.id),
          sessions: sessionsOf.get(machine.id) ?? [],
          unattendedRunning: mine.filter((r) => r.run_mode === 'unattended').length,
          attendedUsers: mine
            .filter((r) => r.run_mode === 'attended')
            .map((r) => r.os_account ?? ''),
          unattendedUsers: mine
            .filter((r) => r.run_mode === 'unattended')
            .map((r) => r.os_account ?? ''),
        })
      }
      return pictures
    },

    /** The machine's settings or its group's may have changed (or it was deleted). */
    settingsChanged(machineId: string): void {
      settingsCache.delete(machineId)
    },

    /** The machine connected at `at`: it is placed on once its first heartbeat came. */
    connected(machineId: string, at: string): void {
      settingsCache.delete(machineId)
      awaitingFirstHeartbeat.add(machineId)
      connectedAt.set(machineId, at)
    },

    disconnected(machineId: string): void {
      settingsCache.delete(machineId)
      sessionsOf.delete(machineId)
      awaitingFirstHeartbeat.delete(machineId)
    },

    /** Whether the machine's current connection was made after `at` (epoch ms). */
    connectedAfter(machineId: string, at: number): boolean {
      const since = connectedAt.get(machineId)
      return since !== undefined && Date.parse(since) > at
    },

    /** The machine's live sessions, from its heartbeat. */
    sessions(machineId: string, sessions: readonly SessionInfo[]): void {
      sessionsOf.set(machineId, sessions)
    },

    /**
     * The machine's first heartbeat since it connected was handled: it is placed on from now.
     * Answers when that connection was made (offers older than it are in doubt); undefined for
     * a machine that was not waiting for it.
     */
    settled(machineId: string): { since: string | undefined } | undefined {
      if (!awaitingFirstHeartbeat.delete(machineId)) return undefined
      return { since: connectedAt.get(machineId) }
    },
  }
}

export type MachinePictures = ReturnType<typeof createMachinePictures>
