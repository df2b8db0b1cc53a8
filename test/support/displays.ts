/**
 * Real user sessions for tests: an Xvfb display started as a test OS user (the agent sees it as
 * that user's session), a screen locker on it, and stopping them again.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync } from 'node:fs'

import type { OsUser } from './os-users.ts'

/** Xvfb started by a user cannot create the shared socket directory itself. */
export function prepareX11SocketDir(): void {
  mkdirSync('/tmp/.X11-unix', { recursive: true })
  chmodSync('/tmp/.X11-unix', 0o1777)
}

export function asUser(
  user: OsUser,
  command: string[],
  env: Record<string, string> = {},
): ChildProcess {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`)
  return spawn(
    'setpriv',
    [
      '--reuid',
      user.name,
      '--regid',
      user.name,
      '--init-groups',
      '--reset-env',
      'env',
      ...assignments,
      ...command,
    ],
    {
      stdio: 'ignore',
    },
  )
}

export function freeDisplay(): number {
  for (let n = 90; n < 200; n++)
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n
  throw new Error('no free display number')
}

export function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}
