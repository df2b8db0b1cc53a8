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
  return {
    of(groupId: string): Promise<Member[]> {
      let found = known.get(groupId)
      if (!found) {
        const reading = read(groupId)
        known.set(groupId, reading)
        // A failed read is tried again next time (unless a newer one replaced it).
        reading.catch(() => {
          if (known.get(groupId) === reading) known.delete(groupId)
        })
        found = reading
      }
      return found
    },
    dropAll(): void {
      known.clear()
    },
  }
}

export type TargetMembers = ReturnType<typeof createTargetMembers>
