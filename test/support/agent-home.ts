/**
 * A place for one test agent: its state directory and its policy file, and the environment
 * that points the `desklink agent` commands at them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface AgentHome {
  readonly dir: string
  readonly env: Record<string, string>
  writePolicy(policy: Record<string, unknown>): void
  remove(): void
}

export function createAgentHome(extraEnv: Record<string, string> = {}): AgentHome {
  const dir = mkdtempSync(join(tmpdir(), 'desklink-agent-'))
  const policyFile = join(dir, 'agent-policy.json')
  return {
    dir,
    env: {
      DESKLINK_AGENT_STATE_DIR: join(dir, 'state'),
      DESKLINK_AGENT_POLICY: policyFile,
      DESKLINK_AGENT_SESSION_POLL_MS: '200',
      DESKLINK_AGENT_BACKOFF_MAX_MS: '1000',
      DESKLINK_CONFIG_DIR: join(dir, 'cli'),
      ...extraEnv,
    },
    writePolicy(policy) {
      writeFileSync(policyFile, JSON.stringify(policy), { mode: 0o644 })
    },
    remove() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
