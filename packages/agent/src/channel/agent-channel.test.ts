import { describe, expect, it } from 'vitest'

import { backoffDelay } from './agent-channel.ts'

describe('reconnect backoff', () => {
  it('grows exponentially from about 250 ms and never passes the cap', () => {
    const max = (attempt: number) => backoffDelay(attempt, 15_000, () => 1)
    const min = (attempt: number) => backoffDelay(attempt, 15_000, () => 0)
    expect(max(0)).toBe(250)
    expect(max(1)).toBe(500)
    expect(max(3)).toBe(2000)
    expect(max(30)).toBe(15_000)
    expect(min(30)).toBe(7500)
  })

  it('spreads agents out with jitter', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, 15_000)))
    expect(delays.size).toBeGreaterThan(10)
  })
})
