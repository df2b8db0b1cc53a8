/**
 * The session rules both the server (placing a run) and the machine (taking it) apply, so they
 * answer with the same codes (reference §4.3 sub-errors).
 *
 * @module
 */
import type { SessionState } from './agent-messages.ts'

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
