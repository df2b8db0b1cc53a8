/**
 * The agent's configuration: read from the environment here only, validated, frozen.
 *
 * @module
 */
import { join, resolve } from 'node:path'

export interface AgentConfig {
  /** Keys and registration state. @defaultValue `/var/lib/desklink-agent` (env `DESKLINK_AGENT_STATE_DIR`) */
  readonly stateDir: string
  /** The local trust policy. @defaultValue `/etc/desklink/agent-policy.json` (env `DESKLINK_AGENT_POLICY`) */
  readonly policyFile: string
  /** How often sessions are looked at, ms. @defaultValue 1,000 (env `DESKLINK_AGENT_SESSION_POLL_MS`) */
  readonly sessionPollMs: number
  /** Longest wait between reconnect attempts, ms. @defaultValue 15,000 (env `DESKLINK_AGENT_BACKOFF_MAX_MS`) */
  readonly backoffMaxMs: number
  /** Where X11 display sockets live. @defaultValue `/tmp/.X11-unix` (env `DESKLINK_AGENT_X11_DIR`) */
  readonly x11SocketDir: string
  /** The PAM service connection tests use. @defaultValue `login` (env `DESKLINK_AGENT_PAM_SERVICE`) */
  readonly pamService: string
  /**
   * Where run workspaces are made (one per run, owned by its OS account). It must be the
   * agent's alone (see `runs/work-dir.ts`), so the default is where nobody else can make it first.
   * @defaultValue `/var/lib/desklink-runs` as root; `<stateDir>/workspaces` for an agent that is
   * not root, which runs flows as itself (env `DESKLINK_AGENT_WORK_DIR`)
   */
  readonly workDir: string
}

export const AGENT_DEFAULTS = {
  stateDir: '/var/lib/desklink-agent',
  policyFile: '/etc/desklink/agent-policy.json',
  sessionPollMs: 1000,
  backoffMaxMs: 15_000,
  x11SocketDir: '/tmp/.X11-unix',
  pamService: 'login',
  workDir: '/var/lib/desklink-runs',
} as const satisfies AgentConfig

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 10)
    throw new TypeError(`${name} must be an integer of at least 10, got '${raw}'`)
  return value
}

export function resolveAgentConfig(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<AgentConfig> = {},
  /** The agent's uid: the work directory's default depends on whether it is root. */
  uid: number = process.getuid?.() ?? 0,
): AgentConfig {
  const stateDir = resolve(
    overrides.stateDir ?? env.DESKLINK_AGENT_STATE_DIR ?? AGENT_DEFAULTS.stateDir,
  )
  return Object.freeze({
    stateDir,
    policyFile: resolve(
      overrides.policyFile ?? env.DESKLINK_AGENT_POLICY ?? AGENT_DEFAULTS.policyFile,
    ),
    sessionPollMs:
      overrides.sessionPollMs ??
      positive(
        'DESKLINK_AGENT_SESSION_POLL_MS',
        env.DESKLINK_AGENT_SESSION_POLL_MS,
        AGENT_DEFAULTS.sessionPollMs,
      ),
    backoffMaxMs:
      overrides.backoffMaxMs ??
      positive(
        'DESKLINK_AGENT_BACKOFF_MAX_MS',
        env.DESKLINK_AGENT_BACKOFF_MAX_MS,
        AGENT_DEFAULTS.backoffMaxMs,
      ),
    x11SocketDir:
      overrides.x11SocketDir ?? env.DESKLINK_AGENT_X11_DIR ?? AGENT_DEFAULTS.x11SocketDir,
    pamService: overrides.pamService ?? env.DESKLINK_AGENT_PAM_SERVICE ?? AGENT_DEFAULTS.pamService,
    workDir: resolve(
      overrides.workDir ??
        env.DESKLINK_AGENT_WORK_DIR ??
        (uid === 0 ? AGENT_DEFAULTS.workDir : join(stateDir, 'workspaces')),
    ),
  })
}
