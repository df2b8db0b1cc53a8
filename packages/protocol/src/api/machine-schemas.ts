/**
 * Machines, machine groups, registration tokens and sharing: API shapes.
 *
 * @module
 */
import { z } from 'zod'

import { MachineSettings, SessionInfo } from '../agent/agent-messages.ts'
import { Id, PrincipalType } from './identity-schemas.ts'

const Name = z.string().trim().min(1).max(100)
const Description = z.string().max(2000)

export const ResourceAccess = z.enum(['coOwner', 'user'])
export type ResourceAccess = z.infer<typeof ResourceAccess>

export const CreateRegistrationTokenRequest = z.strictObject({})
export const RegistrationToken = z.object({
  token: z.string(),
  environmentId: Id,
  expiresAt: z.iso.datetime(),
})

export const SettingsPatch = z.strictObject({
  maintenanceMode: z.boolean().optional(),
  slots: z.int().min(1).max(64).optional(),
  reuseSessions: z.boolean().optional(),
  extendedQueuePrioritization: z.boolean().optional(),
})

export const Machine = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  description: z.string(),
  /** The machine's own standalone group: connections to the machine alone target it. */
  standaloneGroupId: Id,
  /** The group the machine runs for: its standalone group, or the machine group it joined. */
  groupId: Id,
  /** Public key of the machine's own group: clients seal machine-only connection secrets to it. */
  standaloneGroupPublicKey: z.string().nullable(),
  hostname: z.string(),
  os: z.string(),
  agentVersion: z.string(),
  status: z.enum(['connected', 'disconnected']),
  lastHeartbeatAt: z.iso.datetime().nullable(),
  /** Settings as set on the machine. */
  settings: MachineSettings,
  /** Settings in force: the group's when the machine is in a machine group. */
  effectiveSettings: MachineSettings,
  sessions: z.array(SessionInfo),
  ownerType: PrincipalType,
  ownerId: Id,
  access: z.enum(['owner', 'coOwner', 'user', 'admin']),
  createdAt: z.iso.datetime(),
})
export type Machine = z.infer<typeof Machine>

export const UpdateMachineRequest = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  settings: SettingsPatch.optional(),
})

export const MachineGroup = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  description: z.string(),
  type: z.enum(['standalone', 'standard']),
  /** Base64url X25519 public key of the group, once its first machine joined. */
  publicKey: z.string().nullable(),
  keyCreatedAt: z.iso.datetime().nullable(),
  memberCount: z.int(),
  maxMembers: z.int(),
  settings: MachineSettings,
  ownerType: PrincipalType,
  ownerId: Id,
  access: z.enum(['owner', 'coOwner', 'user', 'admin']),
  createdAt: z.iso.datetime(),
})
export type MachineGroup = z.infer<typeof MachineGroup>

export const CreateMachineGroupRequest = z.strictObject({
  environmentId: Id,
  name: Name,
  description: Description.default(''),
  settings: SettingsPatch.optional(),
})
export const UpdateMachineGroupRequest = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  settings: SettingsPatch.optional(),
})

export const Share = z.object({
  id: Id,
  principalType: PrincipalType,
  principalId: Id,
  access: ResourceAccess,
  createdAt: z.iso.datetime(),
})
export type Share = z.infer<typeof Share>
export const CreateShareRequest = z.strictObject({
  principalType: PrincipalType,
  principalId: Id,
  access: ResourceAccess,
})

export const ListMachinesQuery = z.object({ environmentId: Id.optional() })

// The agent's side of the API (machine-authenticated).

export const AgentRegisterRequest = z.strictObject({
  registrationToken: z.string().min(1).max(512),
  name: Name,
  description: Description.default(''),
  hostname: z.string().min(1).max(255),
  os: z.string().min(1).max(64),
  agentVersion: z.string().min(1).max(32),
  /** Base64url raw Ed25519 public key: the machine's identity. */
  identityPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** Base64url raw X25519 public key of the machine's standalone group. */
  standaloneGroupPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** With `--force`: the machine this registration replaces, proven by its old identity key. */
  replaces: z.strictObject({ machineId: Id, assertion: z.string().max(4096) }).optional(),
})
export const AgentRegistration = z.object({
  machineId: Id,
  tenantId: Id,
  environmentId: Id,
  standaloneGroupId: Id,
  name: z.string(),
})

export const AgentJoinInfo = z.object({
  groupId: Id,
  name: z.string(),
  memberCount: z.int(),
  maxMembers: z.int(),
  /** Null until the first machine joins and creates the group key. */
  publicKey: z.string().nullable(),
  /** The group private key wrapped with the group password; null before the first join. */
  keyPackage: z.string().nullable(),
  /** Sealed to the group key: a member proves it holds the key by opening it. */
  challenge: z.string().nullable(),
})

export const AgentJoinRequest = z.strictObject({
  /** First member: the new group public key and the password-wrapped key package. */
  publicKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/)
    .optional(),
  keyPackage: z.string().max(4096).optional(),
  /** Later members: the opened challenge. */
  challengeResponse: z.string().max(256).optional(),
})
