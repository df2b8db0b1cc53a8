/**
 * Throwaway OS accounts for tests that need real users (sessions, PAM, running as a user).
 * They need root; `requireRoot` tells a suite to skip, and why, when it is not.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'

export const isRoot = process.getuid?.() === 0

export function missingTools(tools: readonly string[]): string[] {
  return tools.filter(
    (tool) => !['/usr/bin', '/usr/sbin', '/bin'].some((dir) => existsSync(`${dir}/${tool}`)),
  )
}

/** Why a suite that needs root and these tools cannot run here, or undefined when it can. */
export function skipReason(tools: readonly string[]): string | undefined {
  if (!isRoot) return 'needs root to create OS users (CI runs it as root)'
  const missing = missingTools(tools)
  return missing.length > 0 ? `needs ${missing.join(', ')} (installed by .ci/run)` : undefined
}

export interface OsUser {
  readonly name: string
  readonly uid: number
  remove(): void
}

export function createOsUser(prefix = 'dlt', password?: string): OsUser {
  const name = `${prefix}${randomBytes(3).toString('hex')}`
  execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', name])
  if (password !== undefined) execFileSync('chpasswd', { input: `${name}:${password}\n` })
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim())
  return {
    name,
    uid,
    remove() {
      try {
        execFileSync('pkill', ['-KILL', '-u', name])
      } catch {
        // No process left.
      }
      execFileSync('userdel', ['--remove', name], { stdio: 'ignore' })
    },
  }
}
