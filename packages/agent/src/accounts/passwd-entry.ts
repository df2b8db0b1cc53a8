/**
 * An account's passwd entry, looked up the way the system looks accounts up (NSS, through
 * `getent`): local accounts, and those of a directory the machine is joined to (sssd, winbind),
 * which `/etc/passwd` does not list. Tests give a file of their own instead.
 *
 * @module
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface PasswdEntry {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
}

/** How long a lookup may take: a directory that does not answer fails the run, not the agent. */
const LOOKUP_TIMEOUT_MS = 10_000

function parse(line: string | undefined): PasswdEntry | undefined {
  if (!line) return undefined
  const [name, , uid, gid, , home] = line.split(':')
  if (name === undefined || uid === undefined || gid === undefined) return undefined
  return { name, uid: Number(uid), gid: Number(gid), home: home || '/' }
}

/** The entry of `name`; from `passwdFile` when given, else from the system's account lookup. */
export function passwdEntry(name: string, passwdFile?: string): PasswdEntry | undefined {
  if (passwdFile !== undefined)
    return parse(
      readFileSync(passwdFile, 'utf8')
        .split('\n')
        .find((line) => line.split(':')[0] === name),
    )
  try {
    // `--` ends the options: a name is never taken for one.
    const out = execFileSync('getent', ['passwd', '--', name], {
      encoding: 'utf8',
      timeout: LOOKUP_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    return parse(out.split('\n')[0])
  } catch {
    return undefined // no such account (getent exits 2), or no answer
  }
}
