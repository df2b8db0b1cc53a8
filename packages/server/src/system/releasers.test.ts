import { describe, expect, it } from 'vitest'

import { createReleasers } from './releasers.ts'

describe('releasers', () => {
  it('releases in reverse order, once, and reports the first failure after running all', async () => {
    const order: string[] = []
    const failures: string[] = []
    const releasers = createReleasers((name) => failures.push(name))
    releasers.add('database', () => void order.push('database'))
    releasers.add('cache', () => {
      order.push('cache')
      throw new Error('cache failed')
    })
    releasers.add('http', () => void order.push('http'))
    await expect(releasers.releaseAll()).rejects.toThrow('cache failed')
    await expect(releasers.releaseAll()).rejects.toThrow('cache failed')
    expect(order).toEqual(['http', 'cache', 'database'])
    expect(failures).toEqual(['cache'])
    expect(() => releasers.add('late', () => undefined)).toThrow(TypeError)
  })
})
