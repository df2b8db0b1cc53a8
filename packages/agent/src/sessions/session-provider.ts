/**
 * Where user sessions come from. Linux has two providers: systemd-logind when it runs, else the
 * X11 displays users own. A Windows provider (RDP / LogonUser) would be a third implementation.
 *
 * @module
 */
import type { SessionInfo } from '@desklink/protocol'

export interface SessionProvider {
  readonly name: 'logind' | 'x11'
  /** The sessions now, sorted by id. */
  list(): Promise<SessionInfo[]>
}
