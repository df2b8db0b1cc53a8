/**
 * The machines of each target (a machine's own group, or a machine group), kept for placement
 * passes and admission. Kept until a machine joins or leaves a group, changes, comes, goes or
 * is deleted: all rare next to passes, so any of them drops them all.
 *
 * @module
 */
export interface Member {
  readonly id: string
  readonly name: string
}

export function createTargetMembers(read: (groupId: string) => Promise<Member[]>) {
  const known = new Map<string, Promise<Member[]>>()
  /** The target of each machine seen in a read, since the last drop. */
  const groupOfMachine = new Map<string, string>()
  /** Bumped by each drop: a read that overlapped one says nothing about machines' targets. */
  let epoch = 0
  return {
    of(groupId: string): Promise<Member[]> {
      let found = known.get(groupId)
      if (!found) {
        const readAt = epoch
        const reading = read(groupId)
        known.set(groupId, reading)
        void reading.then(
          (rows) => {
            if (readAt === epoch) for (const m of rows) groupOfMachine.set(m.id, groupId)
          },
          () => undefined,
        )
        // A failed read is tried again next time (unless a newer one replaced it).
        reading.catch(() => {
          if (known.get(groupId) === reading) known.delete(groupId)
        })
        found = reading
      }
      return found
    },
    /** The target a machine belongs to, when a read since the last drop saw it. */
    groupOf(machineId: string): string | undefined {
      return groupOfMachine.get(machineId)
    },
    dropAll(): void {
      known.clear()
      groupOfMachine.clear()
      epoch += 1
    },
  }
}

export type TargetMembers = ReturnType<typeof createTargetMembers>
