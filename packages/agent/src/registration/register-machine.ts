/**
 * `desklink agent register`: checks the local policy against the tenant named in the
 * registration token before sending anything, makes the machine's keys here, and sends only
 * their public halves.
 *
 * @module
 */
import { generateGroupKeyPair, parseRegistrationToken } from '@desklink/protocol'

import { AgentError } from '../agent-error.ts'
import { generateIdentityKey, signMachineAssertion } from '../keys/machine-keys.ts'
import { type AgentPolicy, assertTenantAllowed } from '../policy/agent-policy.ts'
import { callServer } from '../server-client.ts'
import type { AgentState, StateStore } from '../state/agent-state.ts'

export const AGENT_VERSION = '0.1.0'

export interface RegisterOptions {
  readonly server: string
  readonly token: string
  readonly name: string
  readonly description?: string
  readonly force: boolean
  readonly hostname: string
  readonly os: string
  readonly policy: AgentPolicy
  readonly state: StateStore
  readonly fetchFn: typeof fetch
  readonly now: () => Date
}

export async function registerMachine(options: RegisterOptions): Promise<AgentState> {
  const target = parseRegistrationToken(options.token)
  if (!target) throw new AgentError('InvalidRegistrationToken')
  assertTenantAllowed(
    options.policy,
    target.tenantId,
    'UnauthorizedRegistrationToNonAllowListedTenant',
  )

  const existing = options.state.read()
  if (existing && !existing.deleted && !options.force) {
    throw new AgentError('AlreadyRegistered', {
      details: { machineId: existing.machineId, server: existing.server },
    })
  }
  const oldKey = options.state.readKey('identity.pem')
  const server = options.server.replace(/\/$/, '')
  // The old identity proves the replacement only to the server it was registered with; an
  // assertion for one server is never handed to another.
  const replaces =
    existing && !existing.deleted && oldKey && existing.server === server
      ? {
          machineId: existing.machineId,
          assertion: await signMachineAssertion(oldKey, existing.machineId, existing.server),
        }
      : undefined

  const identity = generateIdentityKey()
  const standalone = await generateGroupKeyPair()
  const registration = await callServer<{
    machineId: string
    tenantId: string
    environmentId: string
    standaloneGroupId: string
    name: string
  }>(options.fetchFn, server, 'POST', '/agent/register', {
    body: {
      registrationToken: options.token.trim(),
      name: options.name,
      description: options.description ?? '',
      hostname: options.hostname,
      os: options.os,
      agentVersion: AGENT_VERSION,
      identityPublicKey: identity.publicKey,
      standaloneGroupPublicKey: standalone.publicKey,
      ...(replaces && { replaces }),
    },
  })
  if (
    registration.tenantId !== target.tenantId ||
    registration.environmentId !== target.environmentId
  ) {
    throw new AgentError('InvalidRegistrationToken', {
      message: 'The server registered the machine to another tenant than the token names.',
    })
  }
  options.state.clear()
  options.state.writeKey('identity.pem', identity.privateKeyPem)
  options.state.writeKey(`group-${registration.standaloneGroupId}.key`, standalone.privateKey)
  const state: AgentState = {
    server,
    machineId: registration.machineId,
    tenantId: registration.tenantId,
    environmentId: registration.environmentId,
    standaloneGroupId: registration.standaloneGroupId,
    groupId: registration.standaloneGroupId,
    name: registration.name,
    registeredAt: options.now().toISOString(),
  }
  options.state.write(state)
  return state
}
