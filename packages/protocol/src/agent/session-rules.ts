/**
 * The session rules both the server (placing a run) and the machine (taking it) apply, so they
 * answer with the same codes (reference §4.3 sub-errors) and look at the same session.
 *
 * @module
 */
import type { SessionInfo, SessionState } from './agent-messages.ts'

/** Why an unattended run cannot start while the user has a session in `state`. */
export function unattendedSessionRefusal(
  state: SessionState,
):
  | 'UnattendedUserSessionLocked'
  | 'UnattendedUserSessionDisconnected'
  | 'SessionExistsForTheUserWhenUnattended' {
  if (state === 'locked') return 'UnattendedUserSessionLocked'
  if (state === 'disconnected') return 'UnattendedUserSessionDisconnected'
  return 'SessionExistsForTheUserWhenUnattended'
}

/** Lower is better: an attended run can use an active session, best one with a display. */
function sessionRank(session: SessionInfo): number {
  if (session.state === 'active') return session.display === null ? 1 : 0
  return session.state === 'locked' ? 2 : 3
}

/**
 * The session of `user` a run goes by when the user has several (signed in at the console and
 * over SSH, say): active with a display, then active, then locked, then disconnected (remote
 * sessions count as disconnected); among equals the first by id, so both sides pick the same.
 *
 * @example
 * ```ts
 * const session = bestSessionOf(heartbeat.sessions, 'alice')
 * if (session?.state !== 'active') refuse('AttendedUserSessionNotActive')
 * ```
 */
export function bestSessionOf(
  sessions: readonly SessionInfo[],
  user: string,
): SessionInfo | undefined {
  let best: SessionInfo | undefined
  for (const session of sessions) {
    if (session.user !== user) continue
    if (
      !best ||
      sessionRank(session) < sessionRank(best) ||
      (sessionRank(session) === sessionRank(best) && session.id < best.id)
    )
      best = session
  }
  return best
}
