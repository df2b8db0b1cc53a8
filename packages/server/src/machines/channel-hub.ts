/**
 * The agent channel's server side: authenticates WebSocket upgrades with a machine assertion,
 * validates every message against the protocol's unions, keeps one live connection per machine,
 * records heartbeats, and pushes settings and deletions to agents.
 *
 * Connection modes: `awaiting-hello` (only `hello` is accepted) → `ready` (heartbeats). A
 * malformed, oversized or out-of-order message closes the connection with `PROTOCOL_ERROR`; a
 * replayed heartbeat (sequence not above the last) is logged and dropped. A newer connection of
 * the same machine supersedes the older one. No message within three heartbeat intervals closes
 * the connection with `HEARTBEAT_TIMEOUT`.
 *
 * Every connection lives in this process. With several replicas, a deletion or settings change
 * made on another replica must reach the hub that holds the socket; that relay (PostgreSQL
 * LISTEN/NOTIFY) plugs in behind `AgentNotifier`.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

import type { DeliveredCredential } from '@desklink/protocol'
import {
  AGENT_CHANNEL_PATH,
  AGENT_MAX_MESSAGE_BYTES,
  type AgentConnectionTestResult,
  AgentMessage,
  type AgentRunFinished,
  CHANNEL_CLOSE,
  negotiateVersion,
  type ServerMessage,
  type SessionInfo,
} from '@desklink/protocol'
import { type WebSocket, WebSocketServer } from 'ws'
import type { z } from 'zod'

type DeliveredCredentialMessage = z.infer<typeof DeliveredCredential>

import { AppError } from '../errors/index.ts'
import type { Logger } from '../logging/index.ts'
import type { AgentService } from './agent-service.ts'
import type { AgentNotifier } from './machine-service.ts'

export type ConnectionMode = 'awaiting-hello' | 'ready' | 'closed'

interface Connection {
  readonly id: string
  readonly machineId: string
  readonly socket: WebSocket
  mode: ConnectionMode
  lastSeq: number
  timer: NodeJS.Timeout | undefined
}

/** What the run dispatcher hears from machines. */
export interface RunChannelEvents {
  machineConnected(machineId: string): void
  machineDisconnected(machineId: string): Promise<void>
  heartbeat(machineId: string, sessions: SessionInfo[], runningRuns: string[]): Promise<void>
  accepted(machineId: string, runId: string): Promise<void>
  rejected(machineId: string, runId: string, code: string, reason: string): Promise<void>
  finished(machineId: string, result: AgentRunFinished): Promise<void>
}

export interface ChannelHub extends AgentNotifier {
  /** Sends a message to a connected machine; false when it is not connected. */
  send(machineId: string, message: ServerMessage): boolean
  /** Asks a connected machine to test a credential; rejects when it does not answer in time. */
  requestConnectionTest(
    machineId: string,
    request: { requestId: string; groupId: string; credential: DeliveredCredentialMessage },
    timeoutMs: number,
  ): Promise<AgentConnectionTestResult>
  /** Handles an HTTP upgrade request; answers 404 for other paths. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
  connectedCount(): number
  isConnected(machineId: string): boolean
  /** Closes every connection with `SERVER_SHUTDOWN`. */
  close(): Promise<void>
}

/**
 * Run messages of one machine handled at once, at most; more wait for them (an agent sending
 * its whole journal again after a reconnect).
 */
const MAX_PIPELINED = 64

const REASON = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' } as const
const MESSAGE: Record<string, string> = {
  RouteNotFound: 'Not found.',
  MachineAuthenticationFailed: 'The machine could not be authenticated.',
  ServiceUnavailable: 'The server cannot check machines right now; retry.',
}

function refuseUpgrade(socket: Duplex, status: 401 | 404 | 503, code: string): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify({
    error: {
      code,
      message: MESSAGE[code] ?? code,
    },
  })
  socket.end(
    `HTTP/1.1 ${status} ${REASON[status]}\r\n` +
      'Content-Type: application/json\r\nConnection: close\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

export function createChannelHub(deps: {
  agents: AgentService
  logger: Logger
  heartbeatIntervalMs: number
  runs?: () => RunChannelEvents | undefined
}): ChannelHub {
  const { agents, logger, heartbeatIntervalMs } = deps
  const runs = () => deps.runs?.()
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: AGENT_MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
  })
  const byMachine = new Map<string, Connection>()
  const pendingTests = new Map<
    string,
    {
      machineId: string
      timer: NodeJS.Timeout
      resolve: (result: AgentConnectionTestResult) => void
      reject: (error: Error) => void
    }
  >()
  let closing = false

  const send = (connection: Connection, message: ServerMessage) => {
    if (connection.socket.readyState === connection.socket.OPEN)
      connection.socket.send(JSON.stringify(message))
  }

  function close(connection: Connection, code: number, reason: string) {
    if (connection.mode === 'closed') return
    connection.mode = 'closed'
    clearTimeout(connection.timer)
    connection.socket.close(code, reason)
  }

  function armTimeout(connection: Connection) {
    clearTimeout(connection.timer)
    connection.timer = setTimeout(() => {
      logger.warn(
        { machineId: connection.machineId },
        'agent silent for three heartbeat intervals: closing',
      )
      close(connection, CHANNEL_CLOSE.HEARTBEAT_TIMEOUT, 'heartbeat timeout')
    }, heartbeatIntervalMs * 3)
    connection.timer.unref()
  }

  function protocolError(
    connection: Connection,
    reason: string,
    extra: Record<string, unknown> = {},
  ) {
    logger.warn({ machineId: connection.machineId, reason, ...extra }, 'agent message rejected')
    close(connection, CHANNEL_CLOSE.PROTOCOL_ERROR, reason)
  }

  /** The message, or why it is refused. */
  function parse(raw: string): AgentMessage | { refused: string; issues?: string[] } {
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      return { refused: 'malformed JSON' }
    }
    const parsed = AgentMessage.safeParse(json)
    if (parsed.success) return parsed.data
    return {
      refused: 'invalid message',
      issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
    }
  }

  async function onMessage(connection: Connection, message: AgentMessage) {
    armTimeout(connection)
    if (message.type === 'hello') {
      if (connection.mode !== 'awaiting-hello') return protocolError(connection, 'hello repeated')
      const version = negotiateVersion(message.protocolVersions)
      if (version === undefined) {
        logger.warn(
          { machineId: connection.machineId, offered: message.protocolVersions },
          'no common protocol version',
        )
        return close(connection, CHANNEL_CLOSE.NO_COMMON_VERSION, 'no common protocol version')
      }
      await agents.connected(connection.machineId, {
        hostname: message.hostname,
        os: message.os,
        agentVersion: message.agentVersion,
      })
      // Settings are read after the connection is recorded, so a change made meanwhile is
      // either in this welcome or pushed by machineChanged once the connection is ready.
      const machine = await agents.currentSettings(connection.machineId)
      if (!machine) return close(connection, CHANNEL_CLOSE.MACHINE_DELETED, 'machine deleted')
      connection.mode = 'ready'
      runs()?.machineConnected(connection.machineId)
      send(connection, {
        type: 'welcome',
        protocolVersion: version,
        machineId: connection.machineId,
        groupId: machine.groupId,
        heartbeatIntervalMs,
        settings: machine.settings,
      })
      logger.info(
        {
          machineId: connection.machineId,
          protocolVersion: version,
          agentVersion: message.agentVersion,
        },
        'agent connected',
      )
      return undefined
    }
    if (connection.mode !== 'ready')
      return protocolError(connection, `${message.type} before hello`)
    if (message.type === 'connectionTestResult') {
      const pending = pendingTests.get(message.requestId)
      // Only the machine that was asked may answer; anything else is dropped and logged.
      if (!pending || pending.machineId !== connection.machineId) {
        logger.warn(
          { machineId: connection.machineId, requestId: message.requestId },
          'unexpected connection test result dropped',
        )
        return undefined
      }
      pendingTests.delete(message.requestId)
      clearTimeout(pending.timer)
      pending.resolve(message)
      return undefined
    }
    if (message.type === 'runAccepted') return runs()?.accepted(connection.machineId, message.runId)
    if (message.type === 'runRejected')
      return runs()?.rejected(connection.machineId, message.runId, message.code, message.reason)
    if (message.type === 'runFinished') {
      await runs()?.finished(connection.machineId, message)
      // Stored (or already known): the machine may drop it from its journal.
      send(connection, { type: 'runFinishedAck', runId: message.runId })
      return undefined
    }
    if (message.seq <= connection.lastSeq) {
      logger.warn(
        { machineId: connection.machineId, seq: message.seq, lastSeq: connection.lastSeq },
        'replayed heartbeat dropped',
      )
      return undefined
    }
    connection.lastSeq = message.seq
    agents.heartbeat(connection.machineId, message.sessions)
    await runs()?.heartbeat(connection.machineId, message.sessions, message.runningRuns)
    return undefined
  }

  function accept(socket: WebSocket, machineId: string) {
    const connection: Connection = {
      id: agents.newConnectionId(),
      machineId,
      socket,
      mode: 'awaiting-hello',
      lastSeq: 0,
      timer: undefined,
    }
    const previous = byMachine.get(machineId)
    if (previous) close(previous, CHANNEL_CLOSE.SUPERSEDED, 'superseded by a newer connection')
    byMachine.set(machineId, connection)
    armTimeout(connection)
    // Messages of one connection are handled in order: each starts once the ones before it
    // are done. A run's acceptance and result only wait for the messages before them to have
    // started: they touch that run alone, and the write batcher stores writes in the order they
    // were asked for. So the results a machine sends together are stored together, and an
    // acceptance and the result that follows it at once become one update (the dispatcher's
    // `accepted`). Every other message waits for all of them.
    let ordered: Promise<unknown> = Promise.resolve()
    const pipelined = new Set<Promise<unknown>>()
    const handle = (work: () => unknown) => async () => {
      try {
        await work()
      } catch (error) {
        logger.error({ err: error, machineId }, 'agent message handling failed')
        close(connection, CHANNEL_CLOSE.PROTOCOL_ERROR, 'internal error')
      }
    }
    socket.on('message', (data, isBinary) => {
      const message = isBinary
        ? { refused: 'binary frame' }
        : parse(
            (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString(
              'utf8',
            ),
          )
      if ('refused' in message) {
        const { refused, issues } = message
        const work = handle(() => protocolError(connection, refused, issues && { issues }))
        ordered = Promise.all([ordered, ...pipelined]).then(work)
        pipelined.clear()
        return
      }
      const work = handle(() => onMessage(connection, message))
      const runMessage = message.type === 'runAccepted' || message.type === 'runFinished'
      if (runMessage && pipelined.size < MAX_PIPELINED) {
        const started = ordered.then(work)
        pipelined.add(started)
        void started.then(() => pipelined.delete(started))
      } else {
        ordered = Promise.all([ordered, ...pipelined]).then(work)
        pipelined.clear()
      }
    })
    socket.on('error', (error) =>
      logger.warn({ machineId, err: error.message }, 'agent socket error'),
    )
    socket.on('close', (code) => {
      connection.mode = 'closed'
      clearTimeout(connection.timer)
      if (byMachine.get(machineId) === connection) {
        byMachine.delete(machineId)
        if (!closing) {
          runs()
            ?.machineDisconnected(machineId)
            .catch((error: unknown) =>
              logger.error({ err: error, machineId }, 'run dispatch after disconnect failed'),
            )
          agents
            .disconnected(machineId)
            .catch((error: unknown) =>
              logger.error({ err: error, machineId }, 'recording disconnect failed'),
            )
        }
      }
      logger.info({ machineId, code }, 'agent disconnected')
    })
  }

  return {
    handleUpgrade(request, socket, head) {
      // The HTTP server no longer listens for errors on an upgraded socket: a client that
      // resets the connection while we authenticate must not take the process down.
      socket.on('error', (error) => {
        logger.debug({ err: error.message }, 'agent upgrade socket error')
        socket.destroy()
      })
      const path = (request.url ?? '').split('?')[0]
      if (path !== AGENT_CHANNEL_PATH || closing) return refuseUpgrade(socket, 404, 'RouteNotFound')
      const header = request.headers.authorization ?? ''
      const assertion = /^Bearer (\S+)$/.exec(header)?.[1]
      if (!assertion) return refuseUpgrade(socket, 401, 'MachineAuthenticationFailed')
      agents
        .authenticate(assertion)
        .then((machine) => {
          wss.handleUpgrade(request, socket, head, (ws) => accept(ws, machine.id))
        })
        .catch((error: unknown) => {
          // Only a real refusal is a 401; a failure of ours (the database, say) is a 503, so
          // agents retry instead of concluding that their machine is gone.
          if (!(error instanceof AppError)) {
            logger.error({ err: error }, 'agent authentication failed unexpectedly')
            return refuseUpgrade(socket, 503, 'ServiceUnavailable')
          }
          logger.info(
            { reason: (error.details as { reason?: string } | undefined)?.reason },
            'agent channel refused',
          )
          return refuseUpgrade(socket, 401, 'MachineAuthenticationFailed')
        })
      return undefined
    },
    async machineChanged(machineId) {
      const connection = byMachine.get(machineId)
      if (!connection || connection.mode !== 'ready') return
      const current = await agents.currentSettings(machineId)
      if (current)
        send(connection, { type: 'settings', groupId: current.groupId, settings: current.settings })
    },
    machineDeleted(machineId) {
      const connection = byMachine.get(machineId)
      if (connection) close(connection, CHANNEL_CLOSE.MACHINE_DELETED, 'machine deleted')
    },
    requestConnectionTest(machineId, request, timeoutMs) {
      const connection = byMachine.get(machineId)
      if (!connection || connection.mode !== 'ready')
        return Promise.reject(new Error('machine not connected'))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingTests.delete(request.requestId)
          reject(new Error('the machine did not answer in time'))
        }, timeoutMs)
        timer.unref()
        pendingTests.set(request.requestId, { machineId, timer, resolve, reject })
        send(connection, { type: 'connectionTest', ...request })
      })
    },
    send(machineId, message) {
      const connection = byMachine.get(machineId)
      if (!connection || connection.mode !== 'ready') return false
      send(connection, message)
      return true
    },
    connectedCount: () => byMachine.size,
    // Ready only: a connection still waiting for its hello cannot receive anything yet.
    isConnected: (machineId) => byMachine.get(machineId)?.mode === 'ready',
    async close() {
      closing = true
      const sockets = [...byMachine.values()]
      for (const connection of sockets)
        close(connection, CHANNEL_CLOSE.SERVER_SHUTDOWN, 'server shutting down')
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      for (const connection of sockets) connection.socket.terminate()
    },
  }
}
