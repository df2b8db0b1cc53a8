/**
 * Runs: wires the queue, the dispatcher and the action together for the composition root.
 *
 * @module
 */
import type { Kysely } from 'kysely'

import type { AuditLog } from '../audit/audit-log.ts'
import type { ConnectionService } from '../connections/connection-service.ts'
import type { CredentialResolver } from '../credentials/index.ts'
import { AppError } from '../errors/index.ts'
import type { FlowService } from '../flows/index.ts'
import { loadPrincipal } from '../http/authenticate.ts'
import type { Principal } from '../identity/principal.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantStore } from '../identity/tenant-store.ts'
import type { Logger } from '../logging/index.ts'
import type { AgentService } from '../machines/agent-service.ts'
import type { ChannelHub } from '../machines/channel-hub.ts'
import type { MachineAccess } from '../machines/machine-access.ts'
import type { MachineService } from '../machines/machine-service.ts'
import type { Database, WriteBatcher } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import { createDispatcher } from './dispatcher.ts'
import { createEventRetention } from './event-retention.ts'
import { createRunCallbacks } from './run-callbacks.ts'
import type { ConnectionForRun } from './run-facts.ts'
import { createRunMapper } from './run-routes.ts'
import { createRunService, type KnownAtAdmission } from './run-service.ts'
import { createRunStore, type RunOwnerSubject, type RunRow } from './run-store.ts'

export type { Dispatcher } from './dispatcher.ts'
export { registerRunRoutes } from './run-routes.ts'
export type { RunService } from './run-service.ts'

/** The errors that say the run owner may not: anything else is not an answer. */
const REFUSALS = new Set(['ResourceNotFound', 'Forbidden'])

/** How long a run owner's granted check stands (admission to dispatch, and a burst of runs). */
const OWNER_GRANT_FRESH_MS = 2_000
const OWNER_GRANT_CACHE_SIZE = 10_000

export function createRuns(deps: {
  db: Kysely<Database>
  /** Group commit for the writes of the run lifecycle. */
  writes: WriteBatcher
  flows: FlowService
  connections: ConnectionService
  machines: MachineService
  access: MachineAccess
  agents: AgentService
  hub: () => ChannelHub
  resolver: CredentialResolver
  credentialAccess: (
    principal: Parameters<FlowService['view']>[0],
    credentialId: string,
  ) => Promise<void>
  principals: PrincipalStore
  tenants: TenantStore
  audit: AuditLog
  clock: Clock
  newId: IdGenerator
  logger: Logger
  leaseMs: number
  /** How often run events past retention are deleted, ms. */
  eventsSweepMs: number
  /** Extra CA certificates (PEM) trusted for callback targets. */
  callbackCaPem?: string | undefined
  /** Internal hosts or addresses callbacks may reach all the same. */
  callbackAllowedHosts?: readonly string[]
}) {
  const { db } = deps
  const store = createRunStore(db, deps.newId)
  /** Sign-in tokens minted at request time for synchronous runs (reference §3.10). */
  const presetTokens = new Map<string, { accessToken: string; expiresAt: Date }>()

  /**
   * A run owner found able to run a flow through a connection stays so for a moment: a burst
   * of runs (and the dispatch of a run admitted moments ago) is checked once. Refusals are
   * never kept, and a right taken away stops new runs within that moment.
   */
  const ownerGrants = new Map<string, number>()

  /**
   * `known` saves the reads admission has just made: the caller, when it is the run owner (it
   * was authenticated moments ago, so it exists and is active), and the flow.
   */
  async function runOwnerMayRun(
    run: RunOwnerSubject,
    known: KnownAtAdmission = {},
  ): Promise<boolean> {
    const key = [
      run.tenant_id,
      run.run_owner_type,
      run.run_owner_id,
      run.flow_id,
      run.target_group_id,
      run.connection_id,
    ].join(' ')
    const grantedAt = ownerGrants.get(key)
    const nowMs = deps.clock.now().getTime()
    if (grantedAt !== undefined && nowMs - grantedAt < OWNER_GRANT_FRESH_MS) return true
    const may = await checkRunOwner(run, known)
    if (may) {
      if (ownerGrants.size >= OWNER_GRANT_CACHE_SIZE) ownerGrants.clear()
      ownerGrants.set(key, nowMs)
    } else ownerGrants.delete(key)
    return may
  }

  /** A run target as the principal sees it: a machine (its own group) or a machine group. */
  async function viewTarget(principal: Principal, groupId: string) {
    const standalone = await db
      .selectFrom('machines')
      .select('id')
      .where('standalone_group_id', '=', groupId)
      .executeTakeFirst()
    return standalone
      ? deps.machines.getMachine(principal, standalone.id)
      : deps.machines.getGroup(principal, groupId)
  }

  async function targetAccess(principal: Principal, groupId: string) {
    try {
      return (await viewTarget(principal, groupId)).access
    } catch (error) {
      if (error instanceof AppError && error.code === 'ResourceNotFound') return undefined
      throw error
    }
  }

  /**
   * The targets of an environment the principal owns or co-owns: machines alone (their own
   * group) and machine groups. One read each, as a list of runs asks it every time.
   */
  async function managedTargets(principal: Principal, environmentId: string) {
    if ((await deps.access.rolesIn(principal, environmentId)).length === 0) return []
    const tenantId = principal.tenant.id
    const coOwned = (type: 'machine' | 'machineGroup') =>
      db
        .selectFrom('resource_shares')
        .select('resource_id')
        .where('tenant_id', '=', tenantId)
        .where('resource_type', '=', type)
        .where('principal_type', '=', principal.type)
        .where('principal_id', '=', principal.id)
        .where('access', '=', 'coOwner')
    const machines = await db
      .selectFrom('machines')
      .select('standalone_group_id as target')
      .where('tenant_id', '=', tenantId)
      .where('environment_id', '=', environmentId)
      .where((eb) =>
        eb.or([
          eb.and([eb('owner_type', '=', principal.type), eb('owner_id', '=', principal.id)]),
          eb('id', 'in', coOwned('machine')),
        ]),
      )
      .execute()
    const groups = await db
      .selectFrom('machine_groups')
      .select('id as target')
      .where('tenant_id', '=', tenantId)
      .where('environment_id', '=', environmentId)
      .where('type', '=', 'standard')
      .where((eb) =>
        eb.or([
          eb.and([eb('owner_type', '=', principal.type), eb('owner_id', '=', principal.id)]),
          eb('id', 'in', coOwned('machineGroup')),
        ]),
      )
      .execute()
    return [...machines, ...groups].map((row) => row.target)
  }

  async function checkRunOwner(run: RunOwnerSubject, known: KnownAtAdmission): Promise<boolean> {
    const { caller } = known
    let owner: Principal
    if (caller && caller.type === run.run_owner_type && caller.id === run.run_owner_id)
      owner = caller
    else {
      const tenant = await deps.tenants.findTenantById(run.tenant_id)
      const loaded =
        tenant &&
        (await loadPrincipal(deps.principals, tenant, run.run_owner_type, run.run_owner_id))
      if (!loaded?.active) return false
      owner = loaded.principal
    }
    const flow =
      known.flow?.id === run.flow_id
        ? known.flow
        : await deps.flows.find(run.tenant_id, run.flow_id)
    if (!flow || !(await deps.flows.accessOf(owner, flow))) return false
    try {
      await viewTarget(owner, run.target_group_id)
      const connection = await db
        .selectFrom('connections')
        .select('credential_id')
        .where('id', '=', run.connection_id)
        .executeTakeFirst()
      if (connection?.credential_id) await deps.credentialAccess(owner, connection.credential_id)
      return true
    } catch (error) {
      // Refused: no access. Anything else (the database gone for a moment) is no answer, and
      // goes up: a run is failed for its run owner's rights only when they were refused.
      if (error instanceof AppError && REFUSALS.has(error.code)) return false
      throw error
    }
  }

  async function credentialFor(run: RunRow, connection: ConnectionForRun) {
    if (connection.type === 'password')
      return {
        kind: 'sealed' as const,
        username: connection.username ?? '',
        sealedSecret: connection.sealed_password ?? '',
        context: `connection:${connection.id}`,
      }
    if (connection.type === 'credential')
      return deps.resolver.resolveForGroup({
        tenantId: connection.tenant_id,
        credentialId: connection.credential_id ?? '',
        groupId: run.target_group_id,
      })
    // Kept until the run ends: offered again after a machine turned it down, it still goes with
    // the token of its request, or fails when that expired.
    const preset = presetTokens.get(run.id)
    if (preset) {
      if (preset.expiresAt.getTime() <= deps.clock.now().getTime()) {
        throw new AppError('PasswordlessTokenExpiry')
      }
      return { kind: 'signIn' as const, accessToken: preset.accessToken }
    }
    const minted = await deps.connections.mintSignInToken(connection)
    return { kind: 'signIn' as const, accessToken: minted.accessToken }
  }

  // The dispatcher reports ends to the service and the mapper, which are made after it.
  const late: {
    service?: ReturnType<typeof createRunService>
    toApi?: ReturnType<typeof createRunMapper>
  } = {}
  const callbacks = createRunCallbacks({
    store,
    writes: deps.writes,
    body: (run) => {
      if (!late.toApi) throw new Error('runs are not wired yet')
      return late.toApi(run)
    },
    clock: deps.clock,
    logger: deps.logger,
    caPem: deps.callbackCaPem,
    allowedHosts: deps.callbackAllowedHosts,
  })
  const dispatcher = createDispatcher({
    db,
    store,
    writes: deps.writes,
    clock: deps.clock,
    logger: deps.logger,
    leaseMs: deps.leaseMs,
    ports: {
      send: (machineId, message) => deps.hub().send(machineId, message),
      isConnected: (machineId) => deps.hub().isConnected(machineId),
      settingsOf: async (machineId) => (await deps.agents.currentSettings(machineId))?.settings,
      credentialFor,
      runOwnerMayRun: (run) => runOwnerMayRun(run),
      onEnded(run) {
        presetTokens.delete(run.id)
        late.service?.ended(run)
        callbacks.ended(run)
      },
    },
  })
  const service = createRunService({
    db,
    store,
    writes: deps.writes,
    dispatcher,
    flows: deps.flows,
    connections: deps.connections,
    access: deps.access,
    targetAccess,
    managedTargets,
    runOwnerMayRun,
    presetSignInToken: (runId, token) => {
      if (token) presetTokens.set(runId, token)
      else presetTokens.delete(runId)
    },
    audit: deps.audit,
    callbackAllowedHosts: deps.callbackAllowedHosts ?? [],
    clock: deps.clock,
    newId: deps.newId,
  })
  const toApi = createRunMapper({ db, store, dispatcher })
  late.service = service
  late.toApi = toApi
  const retention = createEventRetention({
    db,
    writes: deps.writes,
    settingsOf: service.settingsOf,
    clock: deps.clock,
    logger: deps.logger,
    everyMs: deps.eventsSweepMs,
  })
  return { service, dispatcher, toApi, callbacks, retention }
}
