/**
 * The agent channel: one outbound WebSocket per agent at `AGENT_CHANNEL_PATH`, carrying JSON
 * messages that are discriminated unions on `type`. Both sides validate every message on
 * arrival with these schemas; anything else closes the channel with `PROTOCOL_ERROR`.
 *
 * Sequence: the agent opens the socket with a machine assertion (see `machine-assertion.ts`),
 * sends `hello` with the protocol versions it speaks; the server answers `welcome` with the
 * version chosen and the machine's effective settings; from then on the agent sends
 * `heartbeat` every `heartbeatIntervalMs` and whenever its sessions change, and the server
 * pushes `settings` when they change.
 *
 * @module
 */
import { z } from 'zod'

/** Protocol versions this build speaks, oldest first. */
export const AGENT_PROTOCOL_VERSIONS = [1] as const
export const AGENT_CHANNEL_PATH = '/api/v1/agent/channel'
/** Largest message either side accepts (a run offer carries up to 2 MB of sealed inputs). */
export const AGENT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/** WebSocket close codes of the channel (4000-4999 are application codes, RFC 6455 §7.4.2). */
export const CHANNEL_CLOSE = {
  PROTOCOL_ERROR: 4000,
  MACHINE_DELETED: 4001,
  SUPERSEDED: 4002,
  HEARTBEAT_TIMEOUT: 4003,
  NO_COMMON_VERSION: 4004,
  SERVER_SHUTDOWN: 4005,
} as const

export const SessionState = z.enum(['active', 'locked', 'disconnected'])
export type SessionState = z.infer<typeof SessionState>

/** One user session on the machine, as the agent sees it. */
export const SessionInfo = z.strictObject({
  id: z.string().min(1).max(64),
  user: z.string().min(1).max(64),
  uid: z
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  display: z.string().max(32).nullable(),
  state: SessionState,
  source: z.enum(['logind', 'x11']),
})
export type SessionInfo = z.infer<typeof SessionInfo>

export const MachineSettings = z.strictObject({
  maintenanceMode: z.boolean(),
  /** Concurrent unattended runs. */
  slots: z.int().min(1).max(64),
  reuseSessions: z.boolean(),
  extendedQueuePrioritization: z.boolean(),
})
export type MachineSettings = z.infer<typeof MachineSettings>

export const AgentHello = z.strictObject({
  type: z.literal('hello'),
  protocolVersions: z.array(z.int().min(1).max(1000)).min(1).max(16),
  agentVersion: z.string().min(1).max(32),
  hostname: z.string().min(1).max(255),
  os: z.string().min(1).max(64),
})

export const AgentHeartbeat = z.strictObject({
  type: z.literal('heartbeat'),
  /** Strictly increasing per connection: a repeated or older value is a replay. */
  seq: z.int().min(1),
  sessions: z.array(SessionInfo).max(256),
  runningRuns: z.array(z.uuid()).max(64),
})

/** Why a connection test failed on the machine; each has its own message for people. */
export const ConnectionTestReason = z.enum([
  'wrongPassword',
  'unknownUser',
  'accountExpired',
  'passwordExpired',
  'accountLocked',
  'permissionDenied',
  'usernameNotMapped',
  'secretUnavailable',
  'pamError',
  /** Sign-in: the agent policy joins this machine to no tenant or domain (`join: none`). */
  'machineNotJoined',
  /** Sign-in: the token's tenant is not trusted by the agent policy. */
  'tenantNotAllowlisted',
  /** Sign-in: signature, issuer, audience, scope or expiry of the token did not check out. */
  'invalidToken',
])
export type ConnectionTestReason = z.infer<typeof ConnectionTestReason>

export const AgentConnectionTestResult = z.strictObject({
  type: z.literal('connectionTestResult'),
  requestId: z.uuid(),
  ok: z.boolean(),
  /** The OS account the username mapped to. */
  osAccount: z.string().max(64).optional(),
  reason: ConnectionTestReason.optional(),
  detail: z.string().max(1024).optional(),
})
export type AgentConnectionTestResult = z.infer<typeof AgentConnectionTestResult>

/** The machine took the run: it is journaled there and starts now (exactly once). */
export const AgentRunAccepted = z.strictObject({
  type: z.literal('runAccepted'),
  runId: z.uuid(),
})

/** The machine cannot take the run now; the code says why (reference §4.3 sub-errors). */
export const AgentRunRejected = z.strictObject({
  type: z.literal('runRejected'),
  runId: z.uuid(),
  code: z.string().min(1).max(100),
  reason: z.string().max(1024),
})

export const RunOutcome = z.enum(['Succeeded', 'Failed', 'Cancelled'])

/** The end of a run, journaled on the machine and sent until the server acknowledges it. */
export const AgentRunFinished = z.strictObject({
  type: z.literal('runFinished'),
  runId: z.uuid(),
  status: RunOutcome,
  exitCode: z.int().nullable(),
  outputs: z.record(z.string(), z.unknown()).nullable(),
  error: z.strictObject({ code: z.string().max(100), message: z.string().max(4096) }).nullable(),
  osAccount: z.string().max(64).nullable(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
})
export type AgentRunFinished = z.infer<typeof AgentRunFinished>

export const AgentMessage = z.discriminatedUnion('type', [
  AgentHello,
  AgentHeartbeat,
  AgentConnectionTestResult,
  AgentRunAccepted,
  AgentRunRejected,
  AgentRunFinished,
])
export type AgentMessage = z.infer<typeof AgentMessage>

export const ServerWelcome = z.strictObject({
  type: z.literal('welcome'),
  protocolVersion: z.int(),
  machineId: z.uuid(),
  groupId: z.uuid(),
  heartbeatIntervalMs: z.int().min(100),
  settings: MachineSettings,
})

export const ServerSettings = z.strictObject({
  type: z.literal('settings'),
  groupId: z.uuid(),
  settings: MachineSettings,
})

export const ServerError = z.strictObject({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
})

/** What the machine needs to sign a user in: the secret always sealed to its group key. */
export const DeliveredCredential = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('sealed'),
    username: z.string().min(1).max(256),
    sealedSecret: z.string().min(1).max(16_384),
    context: z.string().max(256),
  }),
  z.strictObject({
    kind: z.literal('cyberArk'),
    username: z.string().max(256).nullable(),
    request: z.strictObject({
      url: z.string().max(2048),
      appId: z.string().max(256),
      safe: z.string().max(256),
      folder: z.string().max(256),
      object: z.string().max(256),
      caCertificate: z.string().max(65_536).optional(),
    }),
    sealedClientCertificate: z.string().max(131_072),
    context: z.string().max(256),
  }),
  /** Connect with sign-in: a short-lived `desktopflows.execute` token for the target group. */
  z.strictObject({
    kind: z.literal('signIn'),
    accessToken: z.string().min(1).max(8192),
  }),
])

export const ServerConnectionTest = z.strictObject({
  type: z.literal('connectionTest'),
  requestId: z.uuid(),
  groupId: z.uuid(),
  credential: DeliveredCredential,
})

/** `sealedInputs` of a run without inputs: there is nothing to seal. */
export const NO_INPUTS = ''

/** A run for this machine. It answers `runAccepted` (and starts it) or `runRejected`. */
export const ServerRunOffer = z.strictObject({
  type: z.literal('runOffer'),
  runId: z.uuid(),
  groupId: z.uuid(),
  runMode: z.enum(['attended', 'unattended']),
  flow: z.strictObject({
    contentHash: z.string().regex(/^[0-9a-f]{64}$/),
    runtime: z.enum(['node', 'python', 'shell', 'exec']),
    entry: z.string().min(1).max(255),
    needsDisplay: z.boolean(),
  }),
  credential: DeliveredCredential,
  /**
   * The inputs as JSON, sealed to the group key (context `run:<runId>`); `NO_INPUTS` (empty)
   * for a run without inputs, which has nothing to seal.
   */
  sealedInputs: z.string().max(3 * 1024 * 1024),
  /** Names of sensitive inputs and outputs. */
  sensitive: z.array(z.string().max(64)).max(200),
  timeoutSeconds: z.int().min(1),
  reuseSessions: z.boolean(),
})
export type ServerRunOffer = z.infer<typeof ServerRunOffer>

export const ServerRunCancel = z.strictObject({ type: z.literal('runCancel'), runId: z.uuid() })

/** The server stored the run's end: the machine may drop it from its journal. */
export const ServerRunFinishedAck = z.strictObject({
  type: z.literal('runFinishedAck'),
  runId: z.uuid(),
})

export const ServerMessage = z.discriminatedUnion('type', [
  ServerWelcome,
  ServerSettings,
  ServerError,
  ServerConnectionTest,
  ServerRunOffer,
  ServerRunCancel,
  ServerRunFinishedAck,
])
export type ServerMessage = z.infer<typeof ServerMessage>

/** Picks the newest version both sides speak, or undefined. */
export function negotiateVersion(
  offered: readonly number[],
  supported: readonly number[] = AGENT_PROTOCOL_VERSIONS,
): number | undefined {
  return [...offered].filter((v) => supported.includes(v)).sort((a, b) => b - a)[0]
}
