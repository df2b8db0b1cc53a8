/**
 * What each machine holds (runs offered to it or running on it), kept in memory so a placement
 * pass knows the free slots and busy sessions without reading the database.
 *
 * A machine's holdings are read the first time a pass needs them, then follow the dispatcher:
 * a run taken for the machine is added, a run that ended or came back to its queue is removed.
 * A heartbeat that lists other runs than those kept forgets them, so whatever drifted is read
 * again within one heartbeat. A read that overlapped a change of that machine is used once and
 * not kept. The rows of runs taken
 * here are kept whole, so a machine's report on a run does not read it again.
 *
 * @module
 */
import type { RunRow } from './run-store.ts'

export type Held = Pick<RunRow, 'id' | 'machine_id' | 'run_mode' | 'os_account'>

const isWholeRow = (held: Held): held is RunRow => 'flow_version_id' in held

export function createMachineHoldings(readHeld: (machineIds: string[]) => Promise<Held[]>) {
  const known = new Map<string, Map<string, Held>>()
  /** Bumped by every change of a machine, to tell a read that overlapped one. */
  const versions = new Map<string, number>()
  const bump = (machineId: string) => versions.set(machineId, (versions.get(machineId) ?? 0) + 1)

  return {
    /** What each of the machines holds now. */
    async of(machineIds: readonly string[]): Promise<Map<string, readonly Held[]>> {
      const result = new Map<string, readonly Held[]>()
      const missing: string[] = []
      for (const id of machineIds) {
        const held = known.get(id)
        if (held) result.set(id, [...held.values()])
        else missing.push(id)
      }
      if (missing.length === 0) return result
      const before = new Map(missing.map((id) => [id, versions.get(id) ?? 0]))
      const rows = await readHeld(missing)
      for (const id of missing) {
        const mine = rows.filter((r) => r.machine_id === id)
        result.set(id, mine)
        if ((versions.get(id) ?? 0) === before.get(id))
          known.set(id, new Map(mine.map((r) => [r.id, r])))
      }
      return result
    },

    /**
     * The whole row of a run the machine holds, as this server last stored it; undefined when
     * only its summary was read.
     */
    rowOf(machineId: string, runId: string): RunRow | undefined {
      const held = known.get(machineId)?.get(runId)
      return held && isWholeRow(held) ? held : undefined
    },

    /** Whether what is kept for the machine is exactly the runs it says it holds. */
    agrees(machineId: string, runIds: readonly string[]): boolean {
      const held = known.get(machineId)
      return held !== undefined && held.size === runIds.length && runIds.every((id) => held.has(id))
    },

    /** A run was taken for the machine, or changed while it holds it (the row as stored). */
    add(run: Held & { machine_id: string }): void {
      bump(run.machine_id)
      known.get(run.machine_id)?.set(run.id, run)
    },

    /** A run left the machine: it ended, or went back to its queue. */
    remove(machineId: string, runId: string): void {
      bump(machineId)
      known.get(machineId)?.delete(runId)
    },

    /** Read the machine's holdings again on their next use. */
    forget(machineId: string): void {
      bump(machineId)
      known.delete(machineId)
    },
  }
}

export type MachineHoldings = ReturnType<typeof createMachineHoldings>
