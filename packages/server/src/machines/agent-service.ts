/**
 * The server's side of the agent: registration with a one-time token, machine authentication
 * by signed assertion, joining and leaving machine groups, and the connection facts the
 * channel reports (connect, heartbeat, disconnect).
 *
 * Joining a group never exposes the group password to the server. The first member creates
 * the group key pair and uploads only the public key and the private key wrapped with the
 * password. Later members download the package, unwrap it locally, and prove they hold the
 * key by opening a challenge the server sealed to the group public key; the challenge is a MAC
 * under a key derived from the master key, so the server keeps no state between the two calls.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import {
  MACHINE_ASSERTION_MAX_SECONDS,
  MACHINE_ASSERTION_TYP,
  machineAssertionAudience,
  sealToGroup,
  type SessionInfo,
} from '@desklink/protocol'
import { decodeJwt, importJWK, jwtVerify } from 'jose'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { Mac } from '../secrets/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import type { OAuthStore } from '../tokens/oauth-store.ts'
import type { HeartbeatRecorder } from './heartbeat-recorder.ts'
import { assertManage } from './machine-access.ts'
import {
  type AgentNotifier,
  hashRegistrationToken,
  type MachineService,
} from './machine-service.ts'
import {
  DEFAULT_SETTINGS,
  type GroupRecord,
  type MachineRecord,
  type MachineStore,
} from './machine-store.ts'
import type { MembershipEvents } from './membership-events.ts'

const CHALLENGE_TTL_MS = 300_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface AgentServiceDeps {
  readonly machines: MachineStore
  readonly machineService: MachineService
  readonly oauth: Pick<OAuthStore, 'recordAssertion'>
  readonly membership: MembershipEvents
  readonly notifier: AgentNotifier
  readonly challengeMac: Mac
  readonly publicUrl: () => string
  readonly clock: Clock
  readonly newId: IdGenerator
  readonly maxGroupMembers: number
  readonly transaction: <T>(work: (machines: MachineStore) => Promise<T>) => Promise<T>
  readonly heartbeats: HeartbeatRecorder
}

export interface RegisterInput {
  readonly registrationToken: string
  readonly name: string
  readonly description: string
  readonly hostname: string
  readonly os: string
  readonly agentVersion: string
  readonly identityPublicKey: string
  readonly standaloneGroupPublicKey: string
  readonly replaces?: { readonly machineId: string; readonly assertion: string } | undefined
}

export function createAgentService(deps: AgentServiceDeps) {
  const { machines, clock, newId } = deps
  const now = () => clock.now().toISOString()

  async function verifyAssertion(
    assertion: string,
    options: { recordJti: boolean },
  ): Promise<MachineRecord> {
    const refuse = (reason: string) =>
      new AppError('MachineAuthenticationFailed', { details: { reason } })
    let machineId: unknown
    try {
      machineId = decodeJwt(assertion).iss
    } catch {
      throw refuse('malformed')
    }
    if (typeof machineId !== 'string' || !UUID.test(machineId)) throw refuse('malformed')
    const machine = await machines.findMachineForAgent(machineId)
    if (!machine) throw refuse('unknown machine')
    let verified: { jti?: string; exp?: number }
    try {
      const key = await importJWK(
        { kty: 'OKP', crv: 'Ed25519', x: machine.identityPublicKey },
        'EdDSA',
      )
      const { payload } = await jwtVerify<{ jti?: string }>(assertion, key, {
        issuer: machine.id,
        subject: machine.id,
        audience: machineAssertionAudience(deps.publicUrl()),
        algorithms: ['EdDSA'],
        typ: MACHINE_ASSERTION_TYP,
        maxTokenAge: `${MACHINE_ASSERTION_MAX_SECONDS}s`,
        // Machine clocks drift; iat a little in the future must not lock a machine out.
        clockTolerance: 30,
        requiredClaims: ['exp', 'iat', 'jti'],
        currentDate: clock.now(),
      })
      if ((payload.exp ?? 0) - (payload.iat ?? 0) > MACHINE_ASSERTION_MAX_SECONDS)
        throw new Error('lifetime')
      verified = payload
    } catch (cause) {
      throw new AppError('MachineAuthenticationFailed', {
        details: { reason: 'invalid assertion' },
        cause,
      })
    }
    // Outside the try: a database failure here is ours, not the machine's, and must not read
    // as a refusal.
    if (options.recordJti) {
      const fresh = await deps.oauth.recordAssertion(
        machine.tenantId,
        `machine:${String(verified.jti)}`,
        new Date((verified.exp ?? 0) * 1000).toISOString(),
        now(),
      )
      if (!fresh)
        throw new AppError('MachineAuthenticationFailed', {
          details: { reason: 'replayed assertion' },
        })
    }
    return machine
  }

  const challengeData = (machine: MachineRecord, group: GroupRecord, expiry: number) =>
    `group-join:${machine.id}:${group.id}:${group.publicKey ?? ''}:${expiry}`

  /** The principal must manage both the machine and the group, in the same environment. */
  async function joinableGroup(
    machine: MachineRecord,
    principal: Principal,
    groupId: string,
  ): Promise<GroupRecord> {
    if (principal.tenant.id !== machine.tenantId) throw new AppError('ResourceNotFound')
    const { group, access } = await deps.machineService.getGroup(principal, groupId)
    if (group.environmentId !== machine.environmentId) throw new AppError('ResourceNotFound')
    assertManage(access)
    const machineAccess = await deps.machineService.machineAccess(principal, machine)
    if (!machineAccess) throw new AppError('ResourceNotFound')
    assertManage(machineAccess)
    return group
  }

  return {
    /** Authenticates an agent API call or channel connect. */
    authenticate: (assertion: string) => verifyAssertion(assertion, { recordJti: true }),

    async register(input: RegisterInput): Promise<MachineRecord> {
      const tokenHash = hashRegistrationToken(input.registrationToken)
      const token = await machines.findRegistrationToken(tokenHash)
      const at = now()
      if (!token) throw new AppError('RegistrationTokenInvalid', { details: { reason: 'unknown' } })
      if (token.used_at !== null)
        throw new AppError('RegistrationTokenInvalid', { details: { reason: 'used' } })
      if (token.expires_at <= at)
        throw new AppError('RegistrationTokenInvalid', { details: { reason: 'expired' } })

      // A machine deleted meanwhile has nothing left to replace: the registration goes ahead.
      const replaced =
        input.replaces &&
        (await verifyAssertion(input.replaces.assertion, { recordJti: true }).catch(
          (error: unknown) => {
            const reason = (error as AppError).details as { reason?: string } | undefined
            if (error instanceof AppError && reason?.reason === 'unknown machine') return undefined
            throw error
          },
        ))
      if (
        replaced &&
        (replaced.id !== input.replaces?.machineId || replaced.tenantId !== token.tenant_id)
      ) {
        throw new AppError('MachineAuthenticationFailed', {
          details: { reason: 'replaced machine does not match' },
        })
      }

      const machineId = newId()
      const standaloneGroupId = newId()
      const owner = { ownerType: token.created_by_type, ownerId: token.created_by_id }
      await deps.transaction(async (tx) => {
        if (!(await tx.useRegistrationToken(tokenHash, machineId, at))) {
          throw new AppError('RegistrationTokenInvalid', { details: { reason: 'used' } })
        }
        await tx.insertGroup({
          id: standaloneGroupId,
          tenantId: token.tenant_id,
          environmentId: token.environment_id,
          name: input.name,
          description: '',
          type: 'standalone',
          publicKey: input.standaloneGroupPublicKey,
          keyPackage: null,
          keyCreatedAt: at,
          settings: DEFAULT_SETTINGS,
          ...owner,
          createdAt: at,
        })
        await tx.insertMachine({
          id: machineId,
          tenantId: token.tenant_id,
          environmentId: token.environment_id,
          name: input.name,
          description: input.description,
          standaloneGroupId,
          groupId: standaloneGroupId,
          identityPublicKey: input.identityPublicKey,
          hostname: input.hostname,
          os: input.os,
          agentVersion: input.agentVersion,
          settings: replaced?.settings ?? DEFAULT_SETTINGS,
          sessions: [],
          connected: false,
          lastHeartbeatAt: null,
          ...owner,
          createdAt: at,
        })
        if (replaced) {
          await tx.deleteMachine(replaced.tenantId, replaced.id)
          await tx.deleteGroup(replaced.tenantId, replaced.standaloneGroupId)
        }
      })
      if (replaced)
        deps.notifier.machineDeleted(replaced.id, [replaced.groupId, replaced.standaloneGroupId])
      const machine = await machines.findMachineForAgent(machineId)
      if (!machine) throw new Error('registered machine vanished')
      return machine
    },

    async joinInfo(machine: MachineRecord, principal: Principal, groupId: string) {
      const group = await joinableGroup(machine, principal, groupId)
      const expiry = clock.now().getTime() + CHALLENGE_TTL_MS
      const challenge =
        group.publicKey === null
          ? null
          : await sealToGroup(
              group.publicKey,
              `${expiry}.${deps.challengeMac.sign(challengeData(machine, group, expiry))}`,
              `group-join:${machine.id}:${group.id}`,
            )
      return {
        groupId: group.id,
        name: group.name,
        memberCount: await machines.countMembers(machine.tenantId, group.id),
        maxMembers: deps.maxGroupMembers,
        publicKey: group.publicKey,
        keyPackage: group.keyPackage,
        challenge,
      }
    },

    async join(
      machine: MachineRecord,
      principal: Principal,
      groupId: string,
      body: {
        publicKey?: string | undefined
        keyPackage?: string | undefined
        challengeResponse?: string | undefined
      },
    ): Promise<GroupRecord> {
      const group = await joinableGroup(machine, principal, groupId)
      if (machine.groupId === group.id) return group
      if (machine.groupId !== machine.standaloneGroupId) {
        throw new AppError('MachineAlreadyInGroup', { details: { groupId: machine.groupId } })
      }
      const members = await machines.countMembers(machine.tenantId, group.id)
      if (members >= deps.maxGroupMembers) {
        throw new AppError('MachineGroupFull', { details: { maxMembers: deps.maxGroupMembers } })
      }
      if (group.publicKey === null) {
        if (!body.publicKey || !body.keyPackage) {
          throw new AppError('InvalidRequestBody', {
            message: 'The first machine of a group sends the group public key and key package.',
          })
        }
        if (
          !(await machines.setGroupKeyIfAbsent(
            machine.tenantId,
            group.id,
            body.publicKey,
            body.keyPackage,
            now(),
          ))
        ) {
          throw new AppError('GroupKeyAlreadyCreated')
        }
      } else {
        const [expiry, mac] = (body.challengeResponse ?? '').split('.')
        const valid =
          expiry !== undefined &&
          mac !== undefined &&
          Number(expiry) > clock.now().getTime() &&
          deps.challengeMac.verify(challengeData(machine, group, Number(expiry)), mac)
        if (!valid) throw new AppError('GroupKeyProofFailed')
      }
      if (
        !(await machines.joinGroupIfRoom(
          machine.tenantId,
          machine.id,
          group.id,
          deps.maxGroupMembers,
        ))
      ) {
        const now = await machines.findMachine(machine.tenantId, machine.id)
        if (now && now.groupId !== now.standaloneGroupId) {
          throw new AppError('MachineAlreadyInGroup', { details: { groupId: now.groupId } })
        }
        throw new AppError('MachineGroupFull', { details: { maxMembers: deps.maxGroupMembers } })
      }
      await deps.membership.emitMachineJoinedGroup({
        tenantId: machine.tenantId,
        machineId: machine.id,
        standaloneGroupId: machine.standaloneGroupId,
        groupId: group.id,
      })
      await deps.notifier.machineChanged(machine.id, machine.groupId)
      return group
    },

    async leave(machine: MachineRecord, principal: Principal): Promise<void> {
      if (machine.groupId === machine.standaloneGroupId) throw new AppError('MachineNotInGroup')
      await deps.machineService.removeMember(principal, machine.groupId, machine.id)
    },

    async connected(
      machineId: string,
      facts: { hostname: string; os: string; agentVersion: string },
    ): Promise<void> {
      await machines.recordConnection(machineId, true, { ...facts, at: now() })
    },
    /** Stored a moment later, with other machines' heartbeats (`heartbeat-recorder.ts`). */
    heartbeat(machineId: string, sessions: SessionInfo[]): void {
      deps.heartbeats.record(machineId, sessions, now())
    },
    async disconnected(machineId: string): Promise<void> {
      await deps.heartbeats.settle(machineId)
      await machines.recordConnection(machineId, false, { at: now() })
    },
    /** Current group and effective settings, for pushing to the agent. */
    async currentSettings(machineId: string) {
      const machine = await machines.findMachineForAgent(machineId)
      return (
        machine && {
          groupId: machine.groupId,
          settings: await deps.machineService.effectiveSettings(machine),
        }
      )
    },
    newConnectionId: () => randomUUID(),
  }
}

export type AgentService = ReturnType<typeof createAgentService>
