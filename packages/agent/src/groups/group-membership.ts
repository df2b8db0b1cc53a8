/**
 * Joining and leaving a machine group from the machine. The person or service principal who
 * manages both the machine and the group authorizes it with its access token; the machine
 * proves itself with an assertion; the group password stays on the machine.
 *
 * First member: makes the group key pair, wraps the private key with the password, uploads the
 * public key and the package. Later members: download the package, unwrap it with the password
 * (a wrong password fails here, before anything changes), check it matches the group's public
 * key, and prove possession by opening the server's sealed challenge.
 *
 * @module
 */
import { generateGroupKeyPair, openWithGroupKey, publicKeyOf } from '@desklink/protocol'

import { AgentError } from '../agent-error.ts'
import { signMachineAssertion } from '../keys/machine-keys.ts'
import { callServer } from '../server-client.ts'
import type { StateStore } from '../state/agent-state.ts'
import { unwrapGroupKey, wrapGroupKey } from './key-package.ts'

export const MIN_GROUP_PASSWORD_LENGTH = 12

interface JoinInfo {
  groupId: string
  name: string
  memberCount: number
  maxMembers: number
  publicKey: string | null
  keyPackage: string | null
  challenge: string | null
}

export async function joinGroup(options: {
  state: StateStore
  groupId: string
  password: string
  principalToken: string
  fetchFn: typeof fetch
}): Promise<{ groupId: string; name: string; createdKey: boolean }> {
  const { state, groupId, fetchFn } = options
  const current = state.read()
  const identity = state.readKey('identity.pem')
  if (!current || !identity || current.deleted)
    throw new AgentError(current?.deleted ? 'MachineDeleted' : 'NotRegistered')
  if (options.password.length < MIN_GROUP_PASSWORD_LENGTH) {
    throw new AgentError('GroupPasswordTooShort', {
      message: `The group password must be at least ${MIN_GROUP_PASSWORD_LENGTH} characters long.`,
    })
  }
  const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) =>
    callServer<T>(fetchFn, current.server, method, path, {
      body,
      machineAssertion: await signMachineAssertion(identity, current.machineId, current.server),
      principalToken: options.principalToken,
    })

  const info = await call<JoinInfo>('GET', `/agent/groups/${encodeURIComponent(groupId)}/join`)
  let privateKey: string
  let body: Record<string, string>
  if (info.publicKey === null) {
    const pair = await generateGroupKeyPair()
    privateKey = pair.privateKey
    body = {
      publicKey: pair.publicKey,
      keyPackage: await wrapGroupKey(pair.privateKey, options.password, groupId),
    }
  } else {
    if (!info.keyPackage || !info.challenge) throw new AgentError('GroupKeyMismatch')
    privateKey = await unwrapGroupKey(info.keyPackage, options.password, groupId)
    if ((await publicKeyOf(privateKey)) !== info.publicKey) throw new AgentError('GroupKeyMismatch')
    body = {
      challengeResponse: await openWithGroupKey(
        privateKey,
        info.challenge,
        `group-join:${current.machineId}:${groupId}`,
      ),
    }
  }
  const joined = await call<{ id: string; name: string }>(
    'POST',
    `/agent/groups/${encodeURIComponent(groupId)}/join`,
    body,
  )
  state.writeKey(`group-${joined.id}.key`, privateKey)
  state.update({ groupId: joined.id })
  return { groupId: joined.id, name: joined.name, createdKey: info.publicKey === null }
}

export async function leaveGroup(options: {
  state: StateStore
  principalToken: string
  fetchFn: typeof fetch
}): Promise<void> {
  const current = options.state.read()
  const identity = options.state.readKey('identity.pem')
  if (!current || !identity || current.deleted)
    throw new AgentError(current?.deleted ? 'MachineDeleted' : 'NotRegistered')
  await callServer(options.fetchFn, current.server, 'POST', '/agent/group/leave', {
    machineAssertion: await signMachineAssertion(identity, current.machineId, current.server),
    principalToken: options.principalToken,
  })
  if (current.groupId !== current.standaloneGroupId)
    options.state.removeKey(`group-${current.groupId}.key`)
  options.state.update({ groupId: current.standaloneGroupId })
}
