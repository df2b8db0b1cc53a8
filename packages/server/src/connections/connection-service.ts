/**
 * Desktop flow connections with username and password, with a credential, or with sign-in
 * (reference §2.9).
 *
 * Creating a connection tests it on a connected machine of the target: the machine opens the
 * secret with the group key, maps the username to an OS account and checks it with PAM. The
 * answer (201 either way, as Power Automate's API does) carries status `Connected` or `Error`
 * with the reference's message and the machine's reason in details. With no machine of the
 * target online nothing is stored (`NoListenerConnected`).
 *
 * Passwords are sealed to the target group's public key: by the client when it can (the CLI
 * does), else by the server at once; the plaintext is never stored. Connections are not
 * shared with users; their owner and environment administrators see them.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'

import { sealToGroup } from '@desklink/protocol'
import { createLocalJWKSet, type JWK, jwtVerify } from 'jose'
import type { Kysely, Selectable } from 'kysely'

import type { AuditLog } from '../audit/audit-log.ts'
import type { CredentialResolver } from '../credentials/index.ts'
import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { PrincipalStore } from '../identity/principal-store.ts'
import type { TenantRecord } from '../identity/tenant-store.ts'
import type { ChannelHub } from '../machines/channel-hub.ts'
import type { MachineAccess } from '../machines/machine-access.ts'
import type { MachineService } from '../machines/machine-service.ts'
import type { ShareRecord, ShareStore } from '../sharing/share-store.ts'
import { type ConnectionTable, type Database, prepareQuery } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import type { OAuthStore } from '../tokens/oauth-store.ts'
import type { SignInCode, SignInGrants } from '../tokens/sign-in-grants.ts'

export type ConnectionRow = Selectable<ConnectionTable>

export const TEST_TIMEOUT_MS = 30_000

export const invalidCredentialsMessage = (machineId: string, correlationId: string): string =>
  `Connection failed: [Machine ${machineId}]. There's an issue with your credentials. Check your credentials or use different credentials to connect to the machine. Correlation id: ${correlationId}`

type CreateInput =
  | {
      id: string
      name: string
      target: { machineId: string } | { groupId: string }
      username: string
      sealedPassword: string
    }
  | {
      name: string
      target: { machineId: string } | { groupId: string }
      username: string
      password: string
    }
  | { name: string; target: { machineId: string } | { groupId: string }; credentialId: string }
  | { name: string; target: { machineId: string } | { groupId: string }; signIn: SignInCode }

/** What a failed test on the machine means for people, per connection type (reference §4.1). */
function testFailure(
  row: ConnectionRow,
  machineId: string,
  correlationId: string,
  reason: string | undefined,
): { code: string; message: string } {
  if (row.type !== 'signIn')
    return {
      code: 'InvalidCredentials',
      message: invalidCredentialsMessage(machineId, correlationId),
    }
  if (reason === 'machineNotJoined')
    return {
      code: 'MachineNotJoined',
      message: 'This computer has not joined a Desklink tenant or the domain.',
    }
  if (reason === 'tenantNotAllowlisted')
    return {
      code: 'UnallowedTenantForConnectWithSignIn',
      message: `Tenant ${row.tenant_id} needs to be explicitly allowlisted to authorize 'connect with sign-in' runs on the machine.`,
    }
  return {
    code: 'InvalidCredentials',
    message: 'Unable to connect. The credentials for the machine are incorrect.',
  }
}

export function createConnectionService(deps: {
  db: Kysely<Database>
  machines: MachineService
  access: MachineAccess
  resolver: CredentialResolver
  credentialAccess: (principal: Principal, credentialId: string) => Promise<void>
  hub: () => ChannelHub
  audit: AuditLog
  shares: ShareStore
  principals: Pick<PrincipalStore, 'listCredentials' | 'findServicePrincipal'>
  oauth: Pick<OAuthStore, 'recordAssertion'>
  signIn: SignInGrants
  tenantOf: (tenantId: string) => Promise<TenantRecord>
  clock: Clock
  newId: IdGenerator
  testTimeoutMs?: number
}) {
  const { db } = deps
  const now = () => deps.clock.now().toISOString()

  /** The target's group and its public key; the caller must be able to use the target. */
  async function targetOf(principal: Principal, target: CreateInput['target']) {
    if ('machineId' in target) {
      const { machine } = await deps.machines.getMachine(principal, target.machineId)
      const group = await db
        .selectFrom('machine_groups')
        .select(['public_key'])
        .where('id', '=', machine.standaloneGroupId)
        .executeTakeFirst()
      return {
        groupId: machine.standaloneGroupId,
        environmentId: machine.environmentId,
        publicKey: group?.public_key ?? null,
      }
    }
    const { group } = await deps.machines.getGroup(principal, target.groupId)
    return { groupId: group.id, environmentId: group.environmentId, publicKey: group.publicKey }
  }

  const audit = (
    principal: Principal,
    row: ConnectionRow,
    action: string,
    outcome: 'success' | 'denied',
    details?: Record<string, unknown>,
  ) =>
    deps.audit.record({
      principal,
      environmentId: row.environment_id,
      action,
      targetType: 'connection',
      targetId: row.id,
      outcome,
      ...(details && { details }),
    })

  type ConnectionAccess = 'owner' | 'admin' | 'edit' | 'use'

  /**
   * The caller's access: the owner and environment administrators fully; service principals
   * the connection is shared with, `edit` or `use`. Anyone else does not see it (and the
   * attempt is audited).
   */
  async function accessOf(
    principal: Principal,
    row: ConnectionRow,
  ): Promise<ConnectionAccess | undefined> {
    if (row.owner_type === principal.type && row.owner_id === principal.id) return 'owner'
    if (
      principal.isTenantAdmin ||
      (await deps.access.rolesIn(principal, row.environment_id)).includes('EnvironmentAdmin')
    )
      return 'admin'
    const shared = await deps.shares.accessOf(
      principal.tenant.id,
      'connection',
      row.id,
      principal.type,
      principal.id,
    )
    return shared === 'edit' || shared === 'use' ? shared : undefined
  }

  // Every run request reads its connection.
  const connectionById = prepareQuery(
    db,
    (q, a: { tenantId: string; id: string }) =>
      q
        .selectFrom('connections')
        .selectAll()
        .where('tenant_id', '=', a.tenantId)
        .where('id', '=', a.id),
    { cached: true },
  )

  async function view(
    principal: Principal,
    id: string,
    action = 'read',
    needs: readonly ConnectionAccess[] = ['owner', 'admin', 'edit', 'use'],
  ): Promise<{ row: ConnectionRow; access: ConnectionAccess }> {
    const row = await connectionById.first({ tenantId: principal.tenant.id, id })
    if (!row) throw new AppError('ResourceNotFound')
    const access = await accessOf(principal, row)
    if (!access) {
      await audit(principal, row, `connection.${action}`, 'denied')
      throw new AppError('ResourceNotFound')
    }
    if (!needs.includes(access)) {
      await audit(principal, row, `connection.${action}`, 'denied', { access })
      throw new AppError('Forbidden', { details: { requiredAccess: needs } })
    }
    return { row, access }
  }

  /** The public key of a connection's target group, when it has one. */
  async function targetKeyOf(row: ConnectionRow): Promise<string | null> {
    const group = await db
      .selectFrom('machine_groups')
      .select('public_key')
      .where('id', '=', row.target_group_id)
      .executeTakeFirst()
    return group?.public_key ?? null
  }

  /** Sets the tenant's connections whose `column` is `value` to `Error`, saying why. */
  async function breakConnections(
    tenantId: string,
    column: 'credential_id' | 'target_group_id',
    value: string,
    error: { code: string; message: string; details: Record<string, unknown> },
  ): Promise<void> {
    await db
      .updateTable('connections')
      .set({ status: 'Error', status_error: JSON.stringify(error), updated_at: now() })
      .where('tenant_id', '=', tenantId)
      .where(column, '=', value)
      .execute()
  }

  /** Checks that a service principal agreed to be run owner: a JWT signed with its certificate key. */
  async function assertRunOwnerProof(
    principal: Principal,
    connectionId: string,
    spId: string,
    assertion: string | undefined,
  ): Promise<void> {
    if (principal.type === 'servicePrincipal' && principal.id === spId) return
    if (!assertion) throw new AppError('RunOwnerProofRequired')
    const keys = (await deps.principals.listCredentials(principal.tenant.id, spId))
      .filter((c) => c.kind === 'certificate' && c.publicJwk !== null)
      .map((c) => JSON.parse(c.publicJwk ?? '{}') as JWK)
    try {
      const now = deps.clock.now()
      const { payload } = await jwtVerify(assertion, createLocalJWKSet({ keys }), {
        issuer: spId,
        subject: spId,
        audience: `connection:${connectionId}`,
        requiredClaims: ['exp', 'jti'],
        maxTokenAge: '10m',
        clockTolerance: 30,
        currentDate: now,
      })
      const fresh = await deps.oauth.recordAssertion(
        principal.tenant.id,
        `run-owner:${String(payload.jti)}`,
        new Date((payload.exp ?? 0) * 1000).toISOString(),
        now.toISOString(),
      )
      if (!fresh) throw new Error('replayed')
    } catch (cause) {
      throw new AppError('RunOwnerProofRequired', {
        message: 'The run-owner assertion is not valid.',
        cause,
      })
    }
  }

  /** Runs the test on a connected machine of the group and records the outcome. */
  async function runTest(row: ConnectionRow): Promise<ConnectionRow> {
    const members = await db
      .selectFrom('machines')
      .select('id')
      .where('tenant_id', '=', row.tenant_id)
      .where('group_id', '=', row.target_group_id)
      .execute()
    const hub = deps.hub()
    const online = members.find((m) => hub.isConnected(m.id))
    if (!online)
      throw new AppError('NoListenerConnected', { details: { groupId: row.target_group_id } })
    let credential
    try {
      credential = await credentialFor(row)
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'SignInExpired') throw error
      return recordOutcome(row, {
        status: 'Error',
        error: { code: 'SignInExpired', message: error.message },
        osAccount: null,
      })
    }
    const requestId = randomUUID()
    let result: Awaited<ReturnType<ChannelHub['requestConnectionTest']>>
    try {
      result = await hub.requestConnectionTest(
        online.id,
        { requestId, groupId: row.target_group_id, credential },
        deps.testTimeoutMs ?? TEST_TIMEOUT_MS,
      )
    } catch (cause) {
      throw new AppError('NoListenerConnected', {
        message: 'The machine did not answer the connection test.',
        details: { machineId: online.id },
        cause,
      })
    }
    return recordOutcome(row, {
      status: result.ok ? 'Connected' : 'Error',
      error: result.ok
        ? null
        : {
            ...testFailure(row, online.id, requestId, result.reason),
            details: { reason: result.reason, detail: result.detail, machineId: online.id },
          },
      osAccount: result.osAccount ?? null,
    })
  }

  /** What the machine needs for the test: the sealed secret, the credential, or a fresh token. */
  async function credentialFor(row: ConnectionRow) {
    if (row.type === 'password')
      return {
        kind: 'sealed' as const,
        username: row.username ?? '',
        sealedSecret: row.sealed_password ?? '',
        context: `connection:${row.id}`,
      }
    if (row.type === 'credential')
      return deps.resolver.resolveForGroup({
        tenantId: row.tenant_id,
        credentialId: row.credential_id ?? '',
        groupId: row.target_group_id,
      })
    const minted = await mintSignInToken(row)
    return { kind: 'signIn' as const, accessToken: minted.accessToken }
  }

  async function recordOutcome(
    row: ConnectionRow,
    outcome: {
      status: 'Connected' | 'Error'
      error: { code: string; message: string; details?: unknown } | null
      osAccount: string | null
    },
  ): Promise<ConnectionRow> {
    const at = now()
    await db
      .updateTable('connections')
      .set({
        status: outcome.status,
        status_error: outcome.error && JSON.stringify(outcome.error),
        os_account: outcome.osAccount,
        last_tested_at: at,
        updated_at: at,
      })
      .where('id', '=', row.id)
      .execute()
    return await db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow()
  }

  /** A fresh sign-in token for the connection; the rotated refresh token is stored at once. */
  async function mintSignInToken(row: Pick<ConnectionRow, 'id' | 'tenant_id'>) {
    const tenant = await deps.tenantOf(row.tenant_id)
    // Read and written inside the mint's serialized step: a parallel mint must see the
    // rotated token, or it would replay the old one and revoke the whole family.
    return deps.signIn.mint(tenant, row.id, {
      load: async () =>
        (
          await db
            .selectFrom('connections')
            .select('sealed_refresh_token')
            .where('id', '=', row.id)
            .executeTakeFirst()
        )?.sealed_refresh_token ?? '',
      save: async (sealed) => {
        await db
          .updateTable('connections')
          .set({ sealed_refresh_token: sealed })
          .where('id', '=', row.id)
          .execute()
      },
    })
  }

  /** Redeems a sign-in code of the calling person for the connection's target. */
  async function redeemSignIn(
    principal: Principal,
    code: SignInCode,
    connectionId: string,
    groupId: string,
  ) {
    if (principal.type !== 'user') {
      throw new AppError('SignInFailed', {
        message: 'Only a person can create a connect-with-sign-in connection.',
      })
    }
    return deps.signIn.redeem(principal.tenant, code, {
      userId: principal.id,
      groupId,
      connectionId,
    })
  }

  return {
    /** A fresh `desktopflows.execute` token for a sign-in connection (runs use it). */
    mintSignInToken,
    async create(
      principal: Principal,
      environmentId: string,
      input: CreateInput,
    ): Promise<ConnectionRow> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const target = await targetOf(principal, input.target)
      if (target.environmentId !== environmentId) {
        throw new AppError('InvalidRequestBody', {
          message: 'The target is not in this environment.',
          details: { field: 'target' },
        })
      }
      if (!target.publicKey) {
        throw new AppError('InvalidRequestBody', {
          message: 'The target group has no key yet: a machine must join it first.',
          details: { field: 'target' },
        })
      }
      if ('credentialId' in input) await deps.credentialAccess(principal, input.credentialId)
      const id = 'sealedPassword' in input ? input.id : deps.newId()
      const signedIn =
        'signIn' in input
          ? await redeemSignIn(principal, input.signIn, id, target.groupId)
          : undefined
      const at = now()
      const sealedPassword =
        'sealedPassword' in input
          ? input.sealedPassword
          : 'password' in input
            ? await sealToGroup(target.publicKey, input.password, `connection:${id}`)
            : null
      const row: ConnectionRow = {
        id,
        tenant_id: principal.tenant.id,
        environment_id: environmentId,
        name: input.name,
        target_group_id: target.groupId,
        type: 'credentialId' in input ? 'credential' : signedIn ? 'signIn' : 'password',
        username: 'username' in input ? input.username : signedIn ? principal.name : null,
        sealed_password: sealedPassword,
        credential_id: 'credentialId' in input ? input.credentialId : null,
        sealed_refresh_token: signedIn?.sealedRefreshToken ?? null,
        owner_type: principal.type,
        owner_id: principal.id,
        run_owner_type: principal.type,
        run_owner_id: principal.id,
        run_owner_explicit: 0,
        status: 'Error',
        status_error: JSON.stringify({
          code: 'NotTested',
          message: 'The connection has not been tested yet.',
        }),
        os_account: null,
        last_tested_at: null,
        last_used_at: null,
        created_at: at,
        updated_at: at,
      }
      // The row exists only while it is tested: with no machine online, or any other failure
      // of the test, it is removed again and nothing is kept.
      await db.insertInto('connections').values(row).execute()
      let tested: ConnectionRow
      try {
        tested = await runTest(row)
      } catch (error) {
        await db.deleteFrom('connections').where('id', '=', id).execute()
        throw error
      }
      await audit(principal, tested, 'connection.create', 'success', {
        type: tested.type,
        targetGroupId: tested.target_group_id,
        status: tested.status,
      })
      return tested
    },
    async list(
      principal: Principal,
      environmentId: string,
    ): Promise<{ row: ConnectionRow; access: ConnectionAccess }[]> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const rows = await db
        .selectFrom('connections')
        .selectAll()
        .where('tenant_id', '=', principal.tenant.id)
        .where('environment_id', '=', environmentId)
        .orderBy('name')
        .execute()
      const visible: { row: ConnectionRow; access: ConnectionAccess }[] = []
      for (const row of rows) {
        const access = await accessOf(principal, row)
        if (access) visible.push({ row, access })
      }
      return visible
    },
    async get(principal: Principal, id: string) {
      return view(principal, id)
    },
    /** Which flows ran through the connection, on which machines, as which run owner, when last. */
    async inventory(principal: Principal, id: string) {
      const { row } = await view(principal, id, 'inventory')
      const rows = await db
        .selectFrom('runs')
        .leftJoin('desktop_flows', 'desktop_flows.id', 'runs.flow_id')
        .leftJoin('machines', 'machines.id', 'runs.machine_id')
        .select((eb) => [
          'runs.flow_id as flowId',
          'desktop_flows.name as flowName',
          'runs.machine_id as machineId',
          'machines.name as machineName',
          'runs.run_owner_type as runOwnerType',
          'runs.run_owner_id as runOwnerId',
          eb.fn.countAll<number>().as('runs'),
          eb.fn.max('runs.requested_at').as('lastRunAt'),
        ])
        .where('runs.tenant_id', '=', principal.tenant.id)
        .where('runs.connection_id', '=', row.id)
        .groupBy([
          'runs.flow_id',
          'desktop_flows.name',
          'runs.machine_id',
          'machines.name',
          'runs.run_owner_type',
          'runs.run_owner_id',
        ])
        .orderBy('lastRunAt', 'desc')
        .execute()
      return rows.map((r) => ({
        ...r,
        flowName: r.flowName ?? '(deleted)',
        runs: Number(r.runs),
        lastRunAt: String(r.lastRunAt),
      }))
    },
    /** The connection, if the caller may run flows through it (owner, admin, edit, use). */
    /**
     * A connection to run through. One whose credential was deleted says so, rather than fail
     * later as the run owner's missing right to a credential that is gone.
     */
    async forUse(principal: Principal, id: string) {
      const used = await view(principal, id, 'use')
      const broken = used.row.status_error
        ? (JSON.parse(used.row.status_error) as { code?: string }).code
        : undefined
      if (broken === 'CredentialDeleted') throw new AppError('CredentialDeleted')
      return used
    },
    /** What a new password is sealed to; for those who may change the connection. */
    async targetKey(principal: Principal, id: string) {
      const { row } = await view(principal, id, 'read', ['owner', 'admin', 'edit'])
      const publicKey = await targetKeyOf(row)
      if (!publicKey)
        throw new AppError('InvalidRequestBody', {
          message: 'The target has no key yet: a machine must join the group first.',
        })
      return { targetGroupId: row.target_group_id, publicKey }
    },

    async update(
      principal: Principal,
      id: string,
      changes: {
        name?: string | undefined
        username?: string | undefined
        password?: string | undefined
        sealedPassword?: string | undefined
        signIn?: SignInCode | undefined
      },
    ) {
      const { row, access } = await view(principal, id, 'update', ['owner', 'admin', 'edit'])
      const passwordChanged =
        changes.username !== undefined ||
        changes.password !== undefined ||
        changes.sealedPassword !== undefined
      const identityChanged = passwordChanged || changes.signIn !== undefined
      if (passwordChanged && row.type !== 'password') {
        throw new AppError('InvalidRequestBody', {
          message:
            row.type === 'credential'
              ? 'A credential connection takes its username and password from the credential.'
              : 'A sign-in connection has no password: sign in again instead.',
        })
      }
      if (changes.signIn !== undefined && row.type !== 'signIn') {
        throw new AppError('InvalidRequestBody', {
          message: 'Only a connect-with-sign-in connection takes a new sign-in.',
        })
      }
      if (changes.signIn !== undefined && principal.id !== row.owner_id) {
        throw new AppError('SignInFailed', {
          message: 'Only the person who owns this connection can sign in for it again.',
        })
      }
      const signedIn =
        changes.signIn !== undefined
          ? await redeemSignIn(principal, changes.signIn, row.id, row.target_group_id)
          : undefined
      let sealed = changes.sealedPassword ?? null
      if (changes.password !== undefined) {
        const publicKey = await targetKeyOf(row)
        if (!publicKey)
          throw new AppError('InvalidRequestBody', { message: 'The target group has no key.' })
        sealed = await sealToGroup(publicKey, changes.password, `connection:${row.id}`)
      }
      await db
        .updateTable('connections')
        .set({
          updated_at: now(),
          ...(changes.name !== undefined && { name: changes.name }),
          ...(changes.username !== undefined && { username: changes.username }),
          ...(sealed !== null && { sealed_password: sealed }),
          ...(signedIn && { sealed_refresh_token: signedIn.sealedRefreshToken }),
        })
        .where('id', '=', row.id)
        .execute()
      const updated = await db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow()
      // Every change of identity is tested again on the machine, as creation was.
      const result = identityChanged ? await runTest(updated) : updated
      await audit(principal, result, 'connection.update', 'success', {
        identityChanged,
        status: result.status,
      })
      return { row: result, access }
    },
    async setRunOwner(
      principal: Principal,
      id: string,
      input: { servicePrincipalId: string; assertion?: string | undefined },
    ) {
      const { row, access } = await view(principal, id, 'setRunOwner', ['owner', 'admin'])
      if (row.type === 'signIn') throw new AppError('SignInRunOwnerNotAllowed')
      const sp = await deps.principals.findServicePrincipal(
        principal.tenant.id,
        input.servicePrincipalId,
      )
      if (!sp || sp.status !== 'active') {
        throw new AppError('InvalidRequestBody', {
          message: 'The service principal does not exist in this tenant.',
          details: { field: 'servicePrincipalId' },
        })
      }
      const roles = await deps.access.rolesIn(
        { ...principal, type: 'servicePrincipal', id: sp.id, isTenantAdmin: false },
        row.environment_id,
      )
      if (!roles.some((r) => r === 'EnvironmentMaker' || r === 'EnvironmentAdmin')) {
        throw new AppError('Forbidden', {
          message: 'A run owner needs the EnvironmentMaker role in the environment.',
          details: { requiredRole: 'EnvironmentMaker' },
        })
      }
      await assertRunOwnerProof(principal, row.id, sp.id, input.assertion)
      await db
        .updateTable('connections')
        .set({
          run_owner_type: 'servicePrincipal',
          run_owner_id: sp.id,
          run_owner_explicit: 1,
          updated_at: now(),
        })
        .where('id', '=', row.id)
        .execute()
      await audit(principal, row, 'connection.setRunOwner', 'success', {
        servicePrincipalId: sp.id,
        previous: row.run_owner_id,
      })
      return {
        row: await db
          .selectFrom('connections')
          .selectAll()
          .where('id', '=', row.id)
          .executeTakeFirstOrThrow(),
        access,
      }
    },
    async listShares(principal: Principal, id: string): Promise<ShareRecord[]> {
      await view(principal, id, 'listShares', ['owner', 'admin'])
      return deps.shares.list(principal.tenant.id, 'connection', id)
    },
    /** Only connections with an explicit service-principal run owner, only with service principals, use or edit. */
    async share(
      principal: Principal,
      id: string,
      input: { principalType: 'servicePrincipal'; principalId: string; access: 'use' | 'edit' },
    ): Promise<ShareRecord> {
      const { row } = await view(principal, id, 'share', ['owner', 'admin'])
      if (row.run_owner_explicit !== 1) throw new AppError('ConnectionNotShareable')
      const sp = await deps.principals.findServicePrincipal(principal.tenant.id, input.principalId)
      if (!sp)
        throw new AppError('InvalidRequestBody', {
          message: 'The service principal does not exist in this tenant.',
          details: { field: 'principalId' },
        })
      const record: ShareRecord = {
        id: deps.newId(),
        tenant_id: principal.tenant.id,
        resource_type: 'connection',
        resource_id: id,
        principal_type: 'servicePrincipal',
        principal_id: sp.id,
        access: input.access,
        created_at: now(),
      }
      await deps.shares.insert(record)
      await audit(principal, row, 'connection.share', 'success', {
        servicePrincipalId: sp.id,
        access: input.access,
      })
      return record
    },
    async unshare(principal: Principal, id: string, shareId: string): Promise<void> {
      const { row } = await view(principal, id, 'unshare', ['owner', 'admin'])
      if (!(await deps.shares.delete(principal.tenant.id, 'connection', id, shareId)))
        throw new AppError('ResourceNotFound')
      await audit(principal, row, 'connection.unshare', 'success', { shareId })
    },
    async test(principal: Principal, id: string): Promise<ConnectionRow> {
      const tested = await runTest(
        (await view(principal, id, 'test', ['owner', 'admin', 'edit'])).row,
      )
      await audit(principal, tested, 'connection.test', 'success', { status: tested.status })
      return tested
    },
    async delete(principal: Principal, id: string): Promise<void> {
      const { row } = await view(principal, id, 'delete', ['owner', 'admin'])
      await audit(principal, row, 'connection.delete', 'success')
      await deps.shares.deleteAllFor(principal.tenant.id, 'connection', id)
      await db
        .deleteFrom('connections')
        .where('tenant_id', '=', principal.tenant.id)
        .where('id', '=', id)
        .execute()
    },
    /** Their credential was deleted: the connections that used it no longer connect. */
    breakCredentialConnections: (tenantId: string, credentialId: string): Promise<void> =>
      breakConnections(tenantId, 'credential_id', credentialId, {
        code: 'CredentialDeleted',
        message:
          'The credential of this connection was deleted. Create the connection again with another identity.',
        details: { credentialId },
      }),
    /** A machine joined a group: connections that targeted it alone no longer work (§2.2.2). */
    breakMachineConnections: (
      tenantId: string,
      standaloneGroupId: string,
      groupId: string,
    ): Promise<void> =>
      breakConnections(tenantId, 'target_group_id', standaloneGroupId, {
        code: 'MachineJoinedGroup',
        message:
          'The machine joined a machine group; connections to the machine alone no longer work. Create a connection to the group.',
        details: { groupId },
      }),
  }
}

export type ConnectionService = ReturnType<typeof createConnectionService>
