/**
 * What the agent keeps on disk, under the state directory (0700, root):
 *
 * - `state.json`: server URL, machine, tenant, environment and group ids; `deleted` once the
 *   server said the machine is gone.
 * - `keys/identity.pem`: the Ed25519 identity key (PKCS#8, 0600); signs machine assertions.
 * - `keys/group-<id>.key`: X25519 private keys of the machine's standalone group and of the
 *   machine group it joined (0600); they open what is sealed to those groups.
 * - `status.json`: the running daemon's last status, for `desklink agent status`.
 *
 * @module
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'

export interface AgentState {
  readonly server: string
  readonly machineId: string
  readonly tenantId: string
  readonly environmentId: string
  readonly standaloneGroupId: string
  /** The group the machine runs for (its standalone group unless it joined one). */
  readonly groupId: string
  readonly name: string
  readonly registeredAt: string
  readonly deleted?: boolean
}

export interface AgentStatus {
  readonly mode: string
  readonly since: string
  readonly pid: number
  readonly lastError?: string
  readonly sessions?: unknown
  readonly settings?: unknown
}

function writePrivate(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const temp = `${file}.${process.pid}.tmp`
  writeFileSync(temp, text, { mode: 0o600 })
  chmodSync(temp, 0o600)
  renameSync(temp, file)
}

export function createStateStore(stateDir: string) {
  const stateFile = join(stateDir, 'state.json')
  const keyFile = (name: string) => join(stateDir, 'keys', name)
  return {
    stateDir,
    read(): AgentState | undefined {
      return existsSync(stateFile)
        ? (JSON.parse(readFileSync(stateFile, 'utf8')) as AgentState)
        : undefined
    },
    write(state: AgentState): void {
      writePrivate(stateFile, `${JSON.stringify(state, null, 2)}\n`)
    },
    update(changes: Partial<AgentState>): AgentState {
      const current = this.read()
      if (!current) throw new TypeError('No agent state to update')
      const next = { ...current, ...changes }
      this.write(next)
      return next
    },
    readKey(name: string): string | undefined {
      return existsSync(keyFile(name)) ? readFileSync(keyFile(name), 'utf8') : undefined
    },
    writeKey(name: string, text: string): void {
      writePrivate(keyFile(name), text)
    },
    removeKey(name: string): void {
      rmSync(keyFile(name), { force: true })
    },
    writeStatus(status: AgentStatus): void {
      writePrivate(join(stateDir, 'status.json'), `${JSON.stringify(status, null, 2)}\n`)
    },
    readStatus(): AgentStatus | undefined {
      const file = join(stateDir, 'status.json')
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AgentStatus) : undefined
    },
    /** Forgets the registration (for --force): keys and state go. */
    clear(): void {
      rmSync(join(stateDir, 'keys'), { recursive: true, force: true })
      rmSync(stateFile, { force: true })
      rmSync(join(stateDir, 'status.json'), { force: true })
    },
  }
}

export type StateStore = ReturnType<typeof createStateStore>
