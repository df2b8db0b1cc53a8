/**
 * A machine for tests: registered with the real `desklink agent register` into an environment,
 * its agent running as a real process, connected before this returns.
 */
import { type AgentHome, createAgentHome } from './agent-home.ts'
import { desklink, type LongRunning, spawnDesklink, waitFor } from './cli-process.ts'
import { api } from './test-server.ts'

export interface AgentMachine {
  readonly machineId: string
  readonly home: AgentHome
  readonly agent: LongRunning
  /** Resolves once the server shows the machine connected. */
  readonly connected: () => Promise<unknown>
}

export async function startAgentMachine(
  base: () => string,
  token: string,
  environmentId: string,
  prepare: (home: AgentHome) => void = () => undefined,
): Promise<AgentMachine> {
  const home = createAgentHome()
  prepare(home)
  const registrationToken = (
    await api(base(), token, 'POST', `/environments/${environmentId}/registration-tokens`, {})
  ).body.token
  const registered = await desklink(['agent', 'register', '--server', base(), '--json'], {
    env: home.env,
    stdin: registrationToken,
  })
  const machineId = JSON.parse(registered.stdout).machineId as string
  const connected = () =>
    waitFor(
      async () =>
        (await api(base(), token, 'GET', `/machines/${machineId}`)).body.status === 'connected',
      'the agent',
    )
  const agent = spawnDesklink(['agent', 'run'], home.env)
  await connected()
  return { machineId, home, agent, connected }
}
