import { spawn } from 'node:child_process'

import { describe, expect, it } from 'vitest'

import { groupIsAccounts } from './process-groups.ts'

const uid = process.getuid?.() ?? 0

describe("a journaled process group is killed only while it is the run account's", () => {
  it('knows a live group of the account, and not of another account or once it is gone', async () => {
    const leader = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' })
    const pgid = leader.pid ?? 0
    try {
      expect(groupIsAccounts(pgid, uid)).toBe(true)
      expect(groupIsAccounts(pgid, uid + 1)).toBe(false)
    } finally {
      process.kill(-pgid, 'SIGKILL')
    }
    await new Promise((resolve) => leader.once('exit', resolve))
    expect(groupIsAccounts(pgid, uid)).toBe(false)
  })
})
