/**
 * Sessions from X11 displays owned by users: each socket `/tmp/.X11-unix/X<n>` owned by a
 * non-root user is that user's session on display `:<n>`. The session is locked while a screen
 * locker (i3lock, xtrlock, xsecurelock, slock, xscreensaver, light-locker) runs as that user
 * with that display in its environment. Xvfb ignores screen-saver settings, so the screen saver
 * is not a lock signal here (architecture §10). Reading other users' `/proc/<pid>/environ`
 * needs root, which the agent is.
 *
 * @module
 */
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

import type { SessionInfo } from '@desklink/protocol'

import type { SessionProvider } from './session-provider.ts'

const LOCKERS = new Set([
  'i3lock',
  'xtrlock',
  'xsecurelock',
  'slock',
  'xscreensaver',
  'light-locker',
  'xlock',
])

/** user names by uid, from /etc/passwd. */
async function userNames(passwdFile: string): Promise<Map<number, string>> {
  const names = new Map<number, string>()
  const text = await readFile(passwdFile, 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':')
    if (name && uid) names.set(Number(uid), name)
  }
  return names
}

/** Displays (":n") on which a screen locker of each uid runs. */
async function lockedDisplays(procDir: string): Promise<Map<number, Set<string>>> {
  const locked = new Map<number, Set<string>>()
  const entries = await readdir(procDir).catch(() => [] as string[])
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const comm = (await readFile(join(procDir, pid, 'comm'), 'utf8')).trim()
      if (!LOCKERS.has(comm)) continue
      const status = await readFile(join(procDir, pid, 'status'), 'utf8')
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1])
      const environ = await readFile(join(procDir, pid, 'environ'), 'utf8')
      const display = environ
        .split('\0')
        .find((v) => v.startsWith('DISPLAY='))
        ?.slice('DISPLAY='.length)
      if (!display) continue
      const normalized = display.replace(/^[^:]*(:\d+).*$/, '$1')
      const set = locked.get(uid) ?? new Set<string>()
      set.add(normalized)
      locked.set(uid, set)
    } catch {
      // The process ended while we looked, or is not readable: not a locker we can see.
    }
  }
  return locked
}

export function createX11SessionProvider(options: {
  socketDir: string
  procDir?: string
  passwdFile?: string
}): SessionProvider {
  const procDir = options.procDir ?? '/proc'
  const passwdFile = options.passwdFile ?? '/etc/passwd'
  return {
    name: 'x11',
    async list() {
      const sockets = await readdir(options.socketDir).catch(() => [] as string[])
      const displays: { display: string; uid: number }[] = []
      for (const socket of sockets) {
        const match = /^X(\d+)$/.exec(socket)
        if (!match) continue
        // lstat and a socket check: the directory is world-writable, so a plain file or a
        // symlink planted there must not pass for someone's display.
        const info = await lstat(join(options.socketDir, socket)).catch(() => undefined)
        if (!info || !info.isSocket() || info.uid === 0) continue
        displays.push({ display: `:${match[1]}`, uid: info.uid })
      }
      if (displays.length === 0) return []
      const [names, locked] = await Promise.all([userNames(passwdFile), lockedDisplays(procDir)])
      return displays
        .map(({ display, uid }): SessionInfo => ({
          id: `x11${display}`,
          user: names.get(uid) ?? String(uid),
          uid,
          display,
          state: locked.get(uid)?.has(display) ? 'locked' : 'active',
          source: 'x11',
        }))
        .sort((a, b) => a.id.localeCompare(b.id))
    },
  }
}
