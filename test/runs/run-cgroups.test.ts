/**
 * Where the agent finds its own cgroup in the mounted hierarchy, when the mount shows it from a
 * cgroup below the top (a container's view): at or below the mount's root, never beside it.
 */
import { describe, expect, it } from 'vitest'

import { cgroupUnderMount } from '../../packages/agent/src/runs/run-cgroups.ts'

describe("the agent's cgroup under the cgroup v2 mount", () => {
  it('is its own path when the mount shows the whole hierarchy', () => {
    expect(cgroupUnderMount('/', '/system.slice/desklink-agent.service')).toBe(
      '/system.slice/desklink-agent.service',
    )
  })

  it('is the part below the mount’s root, or the mount itself', () => {
    expect(cgroupUnderMount('/docker/abc', '/docker/abc/agent')).toBe('/agent')
    expect(cgroupUnderMount('/docker/abc', '/docker/abc')).toBe('/')
  })

  it('is nowhere when the cgroup is beside the mount’s root', () => {
    expect(cgroupUnderMount('/docker/abc', '/docker/abcd/agent')).toBeUndefined()
    expect(cgroupUnderMount('/docker/abc', '/other')).toBeUndefined()
  })
})
