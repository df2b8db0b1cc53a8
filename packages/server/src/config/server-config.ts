/**
 * The server's one configuration object: read from environment variables and command-line
 * flags here and nowhere else, validated once, frozen, and passed down. Flags win over the
 * environment; the environment wins over the defaults. Invalid values throw a `TypeError` so a
 * misconfigured server never starts.
 *
 * @module
 */
import { isAbsolute, join, resolve } from 'node:path'

/** Everything the server process can be told. */
export interface ServerConfig {
  /**
   * Directory for the SQLite file, the master key file and other local state.
   * @defaultValue `./.desklink` (env `DESKLINK_DATA_DIR`, flag `--data-dir`)
   */
  readonly dataDir: string
  /**
   * `postgres://…` for PostgreSQL, otherwise a SQLite file path.
   * @defaultValue `<dataDir>/desklink.db` (env `DESKLINK_DATABASE_URL`, flag `--database-url`)
   */
  readonly databaseUrl: string
  /** @defaultValue `127.0.0.1` (env `DESKLINK_HOST`, flag `--host`) */
  readonly host: string
  /** TCP port; 0 picks a free one. @defaultValue `8470` (env `DESKLINK_PORT`, flag `--port`) */
  readonly port: number
  /**
   * The URL clients reach the server at; token issuers are `<publicUrl>/t/<tenant>`.
   * @defaultValue `http://<host>:<port>` (env `DESKLINK_PUBLIC_URL`, flag `--public-url`)
   */
  readonly publicUrl: string | undefined
  /** Master key, 32 bytes base64 or hex. Unset: the key file. (env `DESKLINK_MASTER_KEY`) */
  readonly masterKey: string | undefined
  /** @defaultValue `<dataDir>/master.key` (env `DESKLINK_MASTER_KEY_FILE`) */
  readonly masterKeyFile: string
  /** Create the key file when missing. @defaultValue true (env `DESKLINK_CREATE_MASTER_KEY=false` to refuse) */
  readonly createMasterKey: boolean
  /** First-start admin password; unset: generated and printed once. (env `DESKLINK_ADMIN_PASSWORD`) */
  readonly adminPassword: string | undefined
  /** First-start admin user name. @defaultValue `admin` (env `DESKLINK_ADMIN_USERNAME`) */
  readonly adminUsername: string
  /** @defaultValue `info` (env `DESKLINK_LOG_LEVEL`, flag `--log-level`) */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Lifetime of access tokens, seconds. @defaultValue 600 (env `DESKLINK_ACCESS_TOKEN_TTL_SECONDS`) */
  readonly accessTokenTtlSeconds: number
  /** Lifetime of refresh tokens, seconds. @defaultValue 2,592,000 = 30 days (env `DESKLINK_REFRESH_TOKEN_TTL_SECONDS`) */
  readonly refreshTokenTtlSeconds: number
  /** Largest accepted request body, bytes. @defaultValue 1,048,576 (env `DESKLINK_MAX_BODY_BYTES`) */
  readonly maxBodyBytes: number
  /** How long shutdown waits for requests in flight, ms. @defaultValue 10,000 (env `DESKLINK_SHUTDOWN_TIMEOUT_MS`) */
  readonly shutdownTimeoutMs: number
  /** How often agents send heartbeats, ms; silence for three intervals closes the channel. @defaultValue 15,000 (env `DESKLINK_AGENT_HEARTBEAT_MS`) */
  readonly agentHeartbeatMs: number
  /** How often the events of runs past their environment's retention are deleted, ms. @defaultValue 3,600,000 (env `DESKLINK_RUN_EVENTS_SWEEP_MS`) */
  readonly runEventsSweepMs: number
  /** Most machines in one machine group. @defaultValue 50 (env `DESKLINK_MAX_GROUP_MEMBERS`) */
  readonly maxGroupMembers: number
  /** PEM file of extra CAs trusted for run callback targets. @defaultValue none (env `DESKLINK_CALLBACK_CA_FILE`) */
  readonly callbackCaFile?: string | undefined
  /** Internal hosts or addresses run callbacks may call. @defaultValue none (env `DESKLINK_CALLBACK_ALLOWED_HOSTS`, comma-separated) */
  readonly callbackAllowedHosts: readonly string[]
}

/** Flags as the CLI parsed them; each overrides its environment variable. */
export interface ServerFlags {
  readonly dataDir?: string | undefined
  readonly databaseUrl?: string | undefined
  readonly host?: string | undefined
  readonly port?: string | number | undefined
  readonly publicUrl?: string | undefined
  readonly logLevel?: string | undefined
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const SERVER_DEFAULTS = {
  dataDir: './.desklink',
  host: '127.0.0.1',
  port: 8470,
  adminUsername: 'admin',
  logLevel: 'info',
  accessTokenTtlSeconds: 600,
  refreshTokenTtlSeconds: 30 * 24 * 3600,
  maxBodyBytes: 1024 * 1024,
  shutdownTimeoutMs: 10_000,
  agentHeartbeatMs: 15_000,
  runEventsSweepMs: 3_600_000,
  maxGroupMembers: 50,
} as const satisfies Partial<ServerConfig>

function integer(
  name: string,
  raw: string | number | undefined,
  fallback: number,
  min: number,
): number {
  if (raw === undefined || raw === '') return fallback
  const value = typeof raw === 'number' ? raw : Number(raw)
  if (!Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer of at least ${min}, got '${String(raw)}'`)
  }
  return value
}

function flag(raw: string | undefined, name: string, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback
  if (/^(1|true|yes|on)$/i.test(raw)) return true
  if (/^(0|false|no|off)$/i.test(raw)) return false
  throw new TypeError(`${name} must be true or false, got '${raw}'`)
}

/**
 * Resolves the configuration from the environment and flags.
 *
 * @example
 * ```ts
 * const config = resolveServerConfig(process.env, { port: '0' })
 * ```
 */
export function resolveServerConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: ServerFlags = {},
): ServerConfig {
  const dataDir = resolve(flags.dataDir ?? env.DESKLINK_DATA_DIR ?? SERVER_DEFAULTS.dataDir)
  const rawDatabase = flags.databaseUrl ?? env.DESKLINK_DATABASE_URL
  const databaseUrl =
    rawDatabase === undefined || rawDatabase === ''
      ? join(dataDir, 'desklink.db')
      : /^postgres(ql)?:\/\//i.test(rawDatabase) ||
          rawDatabase === ':memory:' ||
          isAbsolute(rawDatabase)
        ? rawDatabase
        : resolve(rawDatabase)
  const logLevel = flags.logLevel ?? env.DESKLINK_LOG_LEVEL ?? SERVER_DEFAULTS.logLevel
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new TypeError(
      `DESKLINK_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`,
    )
  }
  const publicUrl = flags.publicUrl ?? env.DESKLINK_PUBLIC_URL
  if (
    publicUrl !== undefined &&
    publicUrl !== '' &&
    !/^https?:\/\/[^/]+$/.test(publicUrl.replace(/\/$/, ''))
  ) {
    throw new TypeError(
      `DESKLINK_PUBLIC_URL must be an http(s) origin such as https://desklink.example.com, got '${publicUrl}'`,
    )
  }
  const adminPassword = env.DESKLINK_ADMIN_PASSWORD
  if (adminPassword !== undefined && adminPassword !== '' && adminPassword.length < 12) {
    throw new TypeError('DESKLINK_ADMIN_PASSWORD must be at least 12 characters long')
  }
  return Object.freeze({
    dataDir,
    databaseUrl,
    host: flags.host ?? env.DESKLINK_HOST ?? SERVER_DEFAULTS.host,
    port: integer('DESKLINK_PORT', flags.port ?? env.DESKLINK_PORT, SERVER_DEFAULTS.port, 0),
    publicUrl: publicUrl ? publicUrl.replace(/\/$/, '') : undefined,
    masterKey: env.DESKLINK_MASTER_KEY || undefined,
    masterKeyFile: resolve(env.DESKLINK_MASTER_KEY_FILE ?? join(dataDir, 'master.key')),
    createMasterKey: flag(env.DESKLINK_CREATE_MASTER_KEY, 'DESKLINK_CREATE_MASTER_KEY', true),
    adminPassword: adminPassword || undefined,
    adminUsername: env.DESKLINK_ADMIN_USERNAME || SERVER_DEFAULTS.adminUsername,
    logLevel: logLevel as ServerConfig['logLevel'],
    accessTokenTtlSeconds: integer(
      'DESKLINK_ACCESS_TOKEN_TTL_SECONDS',
      env.DESKLINK_ACCESS_TOKEN_TTL_SECONDS,
      SERVER_DEFAULTS.accessTokenTtlSeconds,
      1,
    ),
    refreshTokenTtlSeconds: integer(
      'DESKLINK_REFRESH_TOKEN_TTL_SECONDS',
      env.DESKLINK_REFRESH_TOKEN_TTL_SECONDS,
      SERVER_DEFAULTS.refreshTokenTtlSeconds,
      60,
    ),
    maxBodyBytes: integer(
      'DESKLINK_MAX_BODY_BYTES',
      env.DESKLINK_MAX_BODY_BYTES,
      SERVER_DEFAULTS.maxBodyBytes,
      1024,
    ),
    shutdownTimeoutMs: integer(
      'DESKLINK_SHUTDOWN_TIMEOUT_MS',
      env.DESKLINK_SHUTDOWN_TIMEOUT_MS,
      SERVER_DEFAULTS.shutdownTimeoutMs,
      0,
    ),
    agentHeartbeatMs: integer(
      'DESKLINK_AGENT_HEARTBEAT_MS',
      env.DESKLINK_AGENT_HEARTBEAT_MS,
      SERVER_DEFAULTS.agentHeartbeatMs,
      100,
    ),
    runEventsSweepMs: integer(
      'DESKLINK_RUN_EVENTS_SWEEP_MS',
      env.DESKLINK_RUN_EVENTS_SWEEP_MS,
      SERVER_DEFAULTS.runEventsSweepMs,
      100,
    ),
    maxGroupMembers: integer(
      'DESKLINK_MAX_GROUP_MEMBERS',
      env.DESKLINK_MAX_GROUP_MEMBERS,
      SERVER_DEFAULTS.maxGroupMembers,
      1,
    ),
    ...(env.DESKLINK_CALLBACK_CA_FILE && { callbackCaFile: env.DESKLINK_CALLBACK_CA_FILE }),
    callbackAllowedHosts: (env.DESKLINK_CALLBACK_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean),
  })
}
