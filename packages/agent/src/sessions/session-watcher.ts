/**
 * Looks at the sessions every `pollMs` and calls back when the snapshot changes, so a session
 * that appears, locks, unlocks or ends reaches the server in the next heartbeat at once.
 *
 * @module
 */
import type { SessionInfo } from '@desklink/protocol'

import type { SessionProvider } from './session-provider.ts'

export interface SessionWatcher {
  current(): SessionInfo[]
  start(): void
  stop(): void
}

export function createSessionWatcher(options: {
  provider: SessionProvider
  pollMs: number
  onChange: (sessions: SessionInfo[]) => void
  onError: (error: unknown) => void
}): SessionWatcher {
  let snapshot: SessionInfo[] = []
  let key = '[]'
  let timer: NodeJS.Timeout | undefined
  let running = false

  async function poll() {
    try {
      const sessions = await options.provider.list()
      const next = JSON.stringify(sessions)
      if (next !== key) {
        key = next
        snapshot = sessions
        options.onChange(sessions)
      }
    } catch (error) {
      options.onError(error)
    }
    if (running) timer = setTimeout(() => void poll(), options.pollMs)
  }

  return {
    current: () => snapshot,
    start() {
      if (running) return
      running = true
      void poll()
    },
    stop() {
      running = false
      clearTimeout(timer)
    },
  }
}
