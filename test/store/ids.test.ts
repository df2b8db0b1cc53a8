/**
 * Ids sort in the order they were made, within one millisecond too: a run's events are read
 * ordered by time and then id, and events stored in the same millisecond must keep their order.
 */
import { describe, expect, it } from 'vitest'

import { uuidv7 } from '../../packages/server/src/system/index.ts'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('ids', () => {
  it('sort in the order they were made, many to a millisecond', () => {
    const now = Date.now() + 60_000
    const ids = Array.from({ length: 5_000 }, () => uuidv7(now))
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
    for (const id of ids) expect(id).toMatch(UUID_V7)
  })

  it('keep their order when the clock goes back', () => {
    const now = Date.now() + 120_000
    const later = uuidv7(now)
    const afterClockWentBack = uuidv7(now - 10_000)
    expect(afterClockWentBack > later).toBe(true)
  })

  it('carry the millisecond they were made in', () => {
    const now = Date.now() + 180_000
    const id = uuidv7(now)
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(now)
  })
})
