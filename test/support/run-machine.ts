/**
 * A server with one real agent process (as root) and an OS account behind a username-and-
 * password connection: the fixture run tests share.
 */
import type { AgentHome } from './agent-home.ts'
import { startAgentMachine } from './agent-machine.ts'
import { type LongRunning, spawnDesklink } from './cli-process.ts'
import { createOsUser, type OsUser } from './os-users.ts'
import { ADMIN_PASSWORD, api, signIn } from './test-server.ts'

export const RUN_ACCOUNT_PASSWORD = 'Run-account-password-42'

export interface RunMachine {
  readonly token: string
  readonly environmentId: string
  readonly machineId: string
  readonly home: AgentHome
  agent: LongRunning
  readonly account: OsUser
  readonly connectionId: string
  /** Starts the agent again (after a test stopped or killed it) and waits for it to connect. */
  restartAgent(): Promise<void>
  setMachine(settings: Record<string, unknown>): Promise<void>
  remove(): Promise<void>
}

/** `base` answers the server's current URL (it may move when a test restarts the server). */
export async function startRunMachine(base: () => string): Promise<RunMachine> {
  const token = (await signIn(base(), 'default', 'admin', ADMIN_PASSWORD)).access_token
  const environmentId = (await api(base(), token, 'GET', '/me')).body.roles[0].environmentId
  const { machineId, home, agent, connected } = await startAgentMachine(base, token, environmentId)
  const account = createOsUser('dlq', RUN_ACCOUNT_PASSWORD)
  const created = await api(base(), token, 'POST', `/environments/${environmentId}/connections`, {
    name: `runs-${account.name}`,
    target: { machineId },
    username: account.name,
    password: RUN_ACCOUNT_PASSWORD,
  })
  if (created.body.status !== 'Connected')
    throw new Error(`the run connection did not connect: ${created.text}`)
  const machine: RunMachine = {
    token,
    environmentId,
    machineId,
    home,
    agent,
    account,
    connectionId: created.body.id,
    async restartAgent() {
      await machine.agent.stop()
      machine.agent = spawnDesklink(['agent', 'run'], home.env)
      await connected()
    },
    async setMachine(settings) {
      const answer = await api(base(), token, 'PATCH', `/machines/${machineId}`, { settings })
      if (answer.status !== 200) throw new Error(`machine settings: ${answer.text}`)
    },
    async remove() {
      await machine.agent.stop()
      account.remove()
      home.remove()
    },
  }
  return machine
}
