/**
 * Sessions from systemd-logind through `loginctl`: Active, LockedHint, State and Remote of each
 * session. A remote session (SSH, a remote desktop) counts as disconnected, whatever logind
 * says of it: nothing can be shown to anyone at the machine through it, so an attended run has
 * no place there. Otherwise a locked one is locked, an active one active, and the rest
 * (inactive: another session has the seat; closing) disconnected.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import type { SessionInfo, SessionState } from '@desklink/protocol'

import type { SessionProvider } from './session-provider.ts'

const run = promisify(execFile)

/** Runs `loginctl` with `args` and answers its standard output. */
export type Loginctl = (args: string[]) => Promise<string>

const systemLoginctl: Loginctl = async (args) => {
  const { stdout } = await run('loginctl', args, { timeout: 5000 })
  return stdout
}

/** True when logind answers on this machine. */
export async function logindAvailable(loginctl: Loginctl = systemLoginctl): Promise<boolean> {
  try {
    await loginctl(['list-sessions', '--no-legend'])
    return true
  } catch {
    return false
  }
}

/** A session's state from its logind properties (module header). */
export function logindSessionState(props: Readonly<Record<string, string>>): SessionState {
  if (props.Remote === 'yes') return 'disconnected'
  if (props.LockedHint === 'yes') return 'locked'
  return props.Active === 'yes' && props.State === 'active' ? 'active' : 'disconnected'
}

export function createLogindSessionProvider(
  options: { loginctl?: Loginctl } = {},
): SessionProvider {
  const loginctl = options.loginctl ?? systemLoginctl
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
        sessions.push({
          id: `logind:${entry.session}`,
          user: entry.user,
          uid: entry.uid,
          display: props.Display ? props.Display : null,
          state: logindSessionState(props),
          source: 'logind',
        })
      }
      return sessions.sort((a, b) => a.id.localeCompare(b.id))
    },
  }
}
