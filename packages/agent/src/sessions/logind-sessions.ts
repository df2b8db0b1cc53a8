/**
 * Sessions from systemd-logind through `loginctl`: Active, LockedHint, State and Remote of each
 * session. Remote or inactive sessions count as disconnected.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import type { SessionInfo } from '@desklink/protocol'

import type { SessionProvider } from './session-provider.ts'

const run = promisify(execFile)

async function loginctl(args: string[]): Promise<string> {
  const { stdout } = await run('loginctl', args, { timeout: 5000 })
  return stdout
}

/** True when logind answers on this machine. */
export async function logindAvailable(): Promise<boolean> {
  try {
    await loginctl(['list-sessions', '--no-legend'])
    return true
  } catch {
    return false
  }
}

export function createLogindSessionProvider(): SessionProvider {
  return {
    name: 'logind',
    async list() {
      const listed = JSON.parse(await loginctl(['list-sessions', '-o', 'json'])) as {
        session: string
        uid: number
        user: string
      }[]
      const sessions: SessionInfo[] = []
      for (const entry of listed) {
        if (entry.uid === 0) continue
        const props = Object.fromEntries(
          (
            await loginctl([
              'show-session',
              entry.session,
              '-p',
              'Active',
              '-p',
              'LockedHint',
              '-p',
              'State',
              '-p',
              'Remote',
              '-p',
              'Display',
            ])
          )
            .trim()
            .split('\n')
            .map((line) => line.split('=', 2) as [string, string]),
        )
        const state =
          props.LockedHint === 'yes'
            ? 'locked'
            : props.Active === 'yes' && props.State === 'active'
              ? 'active'
              : 'disconnected'
        sessions.push({
          id: `logind:${entry.session}`,
          user: entry.user,
          uid: entry.uid,
          display: props.Display ? props.Display : null,
          state,
          source: 'logind',
        })
      }
      return sessions.sort((a, b) => a.id.localeCompare(b.id))
    },
  }
}
