/**
 * The agent's end of the channel: one outbound WebSocket, authenticated by a fresh machine
 * assertion at every connect, `hello` → `welcome`, then heartbeats every interval and whenever
 * sessions change. Lost connections are retried with capped exponential backoff and full
 * jitter (first retry after ~250 ms, never more than `backoffMaxMs` apart), so a restarted
 * server sees its agents back within seconds without a thundering herd.
 *
 * The server closing with `MACHINE_DELETED` means the machine no longer exists: the channel
 * stops for good and says so. Refused connects (401) are retried with the same backoff: they
 * can come from a clock far off or a server whose database is being restored.
 *
 * @module
 */
import {
  AGENT_CHANNEL_PATH,
  AGENT_MAX_MESSAGE_BYTES,
  AGENT_PROTOCOL_VERSIONS,
  type AgentConnectionTestResult,
  type AgentMessage,
  CHANNEL_CLOSE,
  type MachineSettings,
  ServerMessage,
  type SessionInfo,
} from '@desklink/protocol'
import WebSocket from 'ws'

import type { AgentLogger } from '../agent-logger.ts'

export type ChannelMode =
  'idle' | 'connecting' | 'connected' | 'backing-off' | 'stopped' | 'deleted'

export interface ChannelEvents {
  onMode(mode: ChannelMode, detail?: string): void
  onSettings(groupId: string, settings: MachineSettings): void
  onDeleted(): void
  /** Tests a credential on this machine; the answer goes back on the channel. */
  onConnectionTest(
    request: Extract<ServerMessage, { type: 'connectionTest' }>,
  ): Promise<Omit<AgentConnectionTestResult, 'type' | 'requestId'>>
  /** Welcome received; called before the first heartbeat (journaled results go first). */
  onReady(): void
  onRunOffer(offer: Extract<ServerMessage, { type: 'runOffer' }>): void
  onRunCancel(runId: string): void
  onRunFinishedAck(runId: string): void
}

export interface AgentChannel {
  start(): void
  stop(): Promise<void>
  /** Sends a heartbeat now, if connected. */
  heartbeat(): void
  /** Sends a message if connected; false otherwise (the caller keeps it for later). */
  send(message: AgentMessage): boolean
  mode(): ChannelMode
}

const BASE_DELAY_MS = 250

const rawDataToString = (data: WebSocket.RawData): string =>
  (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8')
const REFUSALS_BEFORE_ADVICE = 3

export function backoffDelay(
  attempt: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, BASE_DELAY_MS * 2 ** Math.min(attempt, 20))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

export function createAgentChannel(options: {
  server: string
  assertion: () => Promise<string>
  hello: { agentVersion: string; hostname: string; os: string }
  sessions: () => SessionInfo[]
  runningRuns: () => string[]
  backoffMaxMs: number
  logger: AgentLogger
  events: ChannelEvents
}): AgentChannel {
  const { logger, events } = options
  const url = `${options.server.replace(/^http/, 'ws').replace(/\/$/, '')}${AGENT_CHANNEL_PATH}`
  let mode: ChannelMode = 'idle'
  let socket: WebSocket | undefined
  let attempt = 0
  let refusals = 0
  let seq = 0
  let heartbeatTimer: NodeJS.Timeout | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let closed: (() => void) | undefined

  const setMode = (next: ChannelMode, detail?: string) => {
    mode = next
    events.onMode(next, detail)
  }

  function sendHeartbeat() {
    if (mode !== 'connected' || socket?.readyState !== WebSocket.OPEN) return
    seq += 1
    socket.send(
      JSON.stringify({
        type: 'heartbeat',
        seq,
        sessions: options.sessions(),
        runningRuns: options.runningRuns(),
      }),
    )
  }

  function scheduleReconnect(reason: string) {
    if (mode === 'stopped' || mode === 'deleted') return
    const delay = backoffDelay(attempt++, options.backoffMaxMs)
    setMode('backing-off', `${reason}; retrying in ${delay} ms`)
    retryTimer = setTimeout(() => void connect(), delay)
  }

  function machineGone(reason: string) {
    clearInterval(heartbeatTimer)
    setMode('deleted', reason)
    logger.warn({ reason }, 'the machine was deleted on the server: the agent stops acting for it')
    events.onDeleted()
  }

  async function connect() {
    if (mode === 'stopped' || mode === 'deleted') return
    setMode('connecting')
    let assertion: string
    try {
      assertion = await options.assertion()
    } catch (error) {
      logger.error({ err: (error as Error).message }, 'cannot sign a machine assertion')
      return scheduleReconnect('assertion failed')
    }
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${assertion}` },
      maxPayload: AGENT_MAX_MESSAGE_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    })
    socket = ws
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersions: [...AGENT_PROTOCOL_VERSIONS],
          ...options.hello,
        }),
      )
    })
    ws.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0
      response.resume()
      if (status === 401) {
        refusals += 1
        // A refusal can have other causes (a clock far off, a restored database), so the agent
        // keeps trying and says what to do; only the server's MACHINE_DELETED close is final.
        if (refusals === REFUSALS_BEFORE_ADVICE) {
          logger.error(
            { status, refusals },
            'the server keeps refusing this machine: if it was deleted, register it again',
          )
        } else {
          logger.warn({ status, refusals }, 'the server refused the machine')
        }
      } else {
        logger.warn({ status }, 'the server did not accept the channel')
      }
      ws.terminate()
    })
    ws.on('message', (data) => {
      let message: ServerMessage
      try {
        message = ServerMessage.parse(JSON.parse(rawDataToString(data)))
      } catch {
        logger.warn({}, 'server message rejected: not valid')
        return
      }
      if (message.type === 'welcome') {
        attempt = 0
        refusals = 0
        seq = 0
        setMode('connected')
        logger.info(
          { machineId: message.machineId, protocolVersion: message.protocolVersion },
          'connected to the server',
        )
        events.onSettings(message.groupId, message.settings)
        clearInterval(heartbeatTimer)
        heartbeatTimer = setInterval(sendHeartbeat, message.heartbeatIntervalMs)
        events.onReady()
        sendHeartbeat()
      } else if (message.type === 'settings') {
        events.onSettings(message.groupId, message.settings)
      } else if (message.type === 'connectionTest') {
        const { requestId } = message
        events
          .onConnectionTest(message)
          .catch((error: unknown): Omit<AgentConnectionTestResult, 'type' | 'requestId'> => ({
            ok: false,
            reason: 'pamError',
            detail: (error as Error).message.slice(0, 1024),
          }))
          .then((result) => {
            if (ws.readyState === WebSocket.OPEN)
              ws.send(JSON.stringify({ type: 'connectionTestResult', requestId, ...result }))
          })
          .catch(() => undefined)
      } else if (message.type === 'runOffer') {
        events.onRunOffer(message)
      } else if (message.type === 'runCancel') {
        events.onRunCancel(message.runId)
      } else if (message.type === 'runFinishedAck') {
        events.onRunFinishedAck(message.runId)
      } else {
        logger.warn({ code: message.code }, message.message)
      }
    })
    ws.on('error', (error) => logger.debug({ err: error.message }, 'channel error'))
    ws.on('close', (code, reason) => {
      clearInterval(heartbeatTimer)
      if (socket === ws) socket = undefined
      if (code === CHANNEL_CLOSE.MACHINE_DELETED) return machineGone('deleted')
      if (mode === 'stopped') {
        closed?.()
        return undefined
      }
      logger.info({ code, reason: reason.toString() }, 'channel closed')
      return scheduleReconnect(`closed (${code})`)
    })
  }

  return {
    start() {
      if (mode !== 'idle') return
      void connect()
    },
    async stop() {
      const previous = mode
      setMode('stopped')
      clearInterval(heartbeatTimer)
      clearTimeout(retryTimer)
      if (socket && previous !== 'deleted') {
        const done = new Promise<void>((resolve) => (closed = resolve))
        socket.close(1000, 'agent stopping')
        await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 2000))])
        socket?.terminate()
      }
    },
    heartbeat: sendHeartbeat,
    send(message) {
      if (mode !== 'connected' || socket?.readyState !== WebSocket.OPEN) return false
      socket.send(JSON.stringify(message))
      return true
    },
    mode: () => mode,
  }
}
