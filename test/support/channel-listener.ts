/**
 * The agent channel as a test agent sees it: every server message kept, and a wait for the
 * next message of a type.
 */
import type WebSocket from 'ws'

export type ChannelMessage = Record<string, unknown> & { type: string }

/** The channel as an agent sees it: every message kept, and a wait for the next of a type. */
export function listenToChannel(ws: WebSocket) {
  const seen: ChannelMessage[] = []
  const waiters: { type: string; resolve: (m: ChannelMessage) => void }[] = []
  ws.on('message', (data) => {
    const message = JSON.parse((data as Buffer).toString('utf8')) as ChannelMessage
    const waiter = waiters.findIndex((w) => w.type === message.type)
    if (waiter >= 0) waiters.splice(waiter, 1)[0]?.resolve(message)
    else seen.push(message)
  })
  return {
    next(type: string, ms = 5000): Promise<ChannelMessage> {
      const early = seen.findIndex((m) => m.type === type)
      if (early >= 0) return Promise.resolve(seen.splice(early, 1)[0])
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms`)), ms)
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer)
            resolve(m)
          },
        })
      })
    },
    /** Whether a message of `type` comes within `ms`. */
    async comes(type: string, ms: number): Promise<boolean> {
      return this.next(type, ms).then(
        (m) => {
          seen.unshift(m)
          return true
        },
        () => {
          const left = waiters.findIndex((w) => w.type === type)
          if (left >= 0) waiters.splice(left, 1)
          return false
        },
      )
    },
  }
}
