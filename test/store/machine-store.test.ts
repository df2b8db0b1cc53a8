/**
 * The machine store's concurrency promises, on both databases: a registration token serves
 * one registration, only one machine creates a group's key, and machines joining a group at
 * once never take it past its limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { MachineStore } from '../../packages/server/src/machines/machine-store.ts'
import { uuidv7 } from '../../packages/server/src/system/index.ts'
import { BACKENDS } from '../support/backends.ts'
import {
  at,
  groupRecord,
  type MachinePlace,
  machineRecord,
  openMachineDatabase,
} from '../support/machine-rows.ts'

describe.each(BACKENDS)('machine store on %s', (backend) => {
  let opened: Awaited<ReturnType<typeof openMachineDatabase>>
  let machines: MachineStore
  let place: MachinePlace

  beforeAll(async () => {
    opened = await openMachineDatabase(backend)
    ;({ machines, place } = opened)
  })
  afterAll(() => opened.close())

  const group = (type: 'standalone' | 'standard') => groupRecord(place, type)

  it('lets a registration token serve one registration only, and never after it expires', async () => {
    const token = {
      token_hash: uuidv7(),
      tenant_id: place.tenantId,
      environment_id: place.environmentId,
      created_by_type: 'user' as const,
      created_by_id: place.owner.ownerId,
      expires_at: at(3_600_000),
      used_at: null,
      machine_id: null,
      created_at: at(),
    }
    await machines.insertRegistrationToken(token)
    const uses = await Promise.all([
      machines.useRegistrationToken(token.token_hash, uuidv7(), at(1)),
      machines.useRegistrationToken(token.token_hash, uuidv7(), at(2)),
    ])
    expect(uses.sort()).toEqual([false, true])
    const late = { ...token, token_hash: uuidv7() }
    await machines.insertRegistrationToken(late)
    expect(await machines.useRegistrationToken(late.token_hash, uuidv7(), at(3_600_001))).toBe(
      false,
    )
  })

  it('lets only the first machine set the group key', async () => {
    const g = group('standard')
    await machines.insertGroup(g)
    const results = await Promise.all([
      machines.setGroupKeyIfAbsent(place.tenantId, g.id, 'key-one', 'package-one', at()),
      machines.setGroupKeyIfAbsent(place.tenantId, g.id, 'key-two', 'package-two', at()),
    ])
    expect(results.sort()).toEqual([false, true])
    const stored = await machines.findGroup(place.tenantId, g.id)
    expect(['key-one', 'key-two']).toContain(stored?.publicKey)
    expect(stored?.keyPackage).toBe(stored?.publicKey === 'key-one' ? 'package-one' : 'package-two')
  })

  it('counts members and lists only standard groups', async () => {
    const standalone = group('standalone')
    const standard = group('standard')
    await machines.insertGroup(standalone)
    await machines.insertGroup(standard)
    await machines.insertMachine(
      machineRecord(place, { standaloneGroupId: standalone.id, groupId: standard.id }),
    )
    expect(await machines.countMembers(place.tenantId, standard.id)).toBe(1)
    expect((await machines.listGroups(place.tenantId)).every((g) => g.type === 'standard')).toBe(
      true,
    )
    expect(await machines.findGroup(uuidv7(), standard.id)).toBeUndefined()
  })

  it('keeps a group within its limit when many machines join it at once', async () => {
    // A few rounds: two joins must meet in the same moment for the limit to be at stake.
    for (let round = 0; round < 5; round++) {
      const standard = group('standard')
      await machines.insertGroup(standard)
      const joiners: string[] = []
      for (let i = 0; i < 24; i++) {
        const own = group('standalone')
        await machines.insertGroup(own)
        const machine = machineRecord(place, { standaloneGroupId: own.id, groupId: own.id })
        await machines.insertMachine(machine)
        joiners.push(machine.id)
      }
      const joined = await Promise.all(
        joiners.map((id) => machines.joinGroupIfRoom(place.tenantId, id, standard.id, 5)),
      )
      expect(joined.filter(Boolean)).toHaveLength(5)
      expect(await machines.countMembers(place.tenantId, standard.id)).toBe(5)
    }
  })
})
