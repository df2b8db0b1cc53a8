/**
 * Desktop flows: packages pushed by makers, versioned, addressed by content hash, shared with
 * co-owners (edit, share, delete) and users (run). Pushing a package under an existing name
 * adds a version when the caller may edit that flow; the same content again changes nothing.
 *
 * @module
 */
import type { FlowManifest, PackageFile } from '@desklink/protocol'
import { type Kysely, type Selectable, sql } from 'kysely'

import type { AuditLog } from '../audit/audit-log.ts'
import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import type { Access, MachineAccess } from '../machines/machine-access.ts'
import type { ShareRecord, ShareStore } from '../sharing/share-store.ts'
import {
  type Database,
  type DesktopFlowTable,
  type FlowVersionTable,
  prepareQuery,
} from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'
import { checkPackage } from './flow-package.ts'

export type FlowRow = Selectable<DesktopFlowTable>
/** A version as flows are shown and run: its files (up to 16 MB) are read only for download. */
export type FlowVersionRow = Omit<Selectable<FlowVersionTable>, 'files'>
export type FlowAccess = 'owner' | 'coOwner' | 'user' | 'admin'

export interface FlowView {
  readonly flow: FlowRow
  readonly version: FlowVersionRow
  readonly access: FlowAccess
}

/** Makers (and administrators) push flows. */
const FLOW_CREATOR_ROLES = ['EnvironmentAdmin', 'EnvironmentMaker']
/** How often a push that lost a race with another push of the same name looks again. */
const PUSH_ATTEMPTS = 8

const asFlowAccess = (access: Access | undefined): FlowAccess | undefined =>
  access === 'userCanShare' ? 'user' : access

export function createFlowService(deps: {
  db: Kysely<Database>
  access: MachineAccess
  shares: ShareStore
  audit: AuditLog
  clock: Clock
  newId: IdGenerator
  isUniqueViolation: (error: unknown) => boolean
}) {
  const { db } = deps
  const now = () => deps.clock.now().toISOString()
  // Every run request reads its flow and the flow's current version.
  const flowById = prepareQuery(
    db,
    (q, a: { tenantId: string; id: string }) =>
      q
        .selectFrom('desktop_flows')
        .selectAll()
        .where('tenant_id', '=', a.tenantId)
        .where('id', '=', a.id),
    { cached: true },
  )
  const versionOf = prepareQuery(
    db,
    (q, a: { flowId: string; version: number }) =>
      q
        .selectFrom('flow_versions')
        .select([
          'id',
          'tenant_id',
          'flow_id',
          'version',
          'content_hash',
          'manifest',
          'size_bytes',
          'created_at',
        ])
        .where('flow_id', '=', a.flowId)
        .where('version', '=', a.version),
    { cached: true },
  )

  const accessOf = async (principal: Principal, flow: FlowRow) =>
    asFlowAccess(
      await deps.access.accessTo(principal, 'desktopFlow', {
        id: flow.id,
        environmentId: flow.environment_id,
        ownerType: flow.owner_type,
        ownerId: flow.owner_id,
      }),
    )

  async function currentVersion(flow: FlowRow): Promise<FlowVersionRow> {
    const version = await versionOf.first({ flowId: flow.id, version: flow.current_version })
    if (!version) throw new Error(`flow ${flow.id} has no version ${flow.current_version}`)
    return version
  }

  async function find(tenantId: string, id: string): Promise<FlowRow | undefined> {
    return flowById.first({ tenantId, id })
  }

  const audit = (principal: Principal, flow: FlowRow, action: string, details?: object) =>
    deps.audit.record({
      principal,
      environmentId: flow.environment_id,
      action,
      targetType: 'desktopFlow',
      targetId: flow.id,
      outcome: 'success',
      ...(details && { details: details as Record<string, unknown> }),
    })

  /** The flow as the caller may see it; not found for anyone without access. */
  async function view(
    principal: Principal,
    id: string,
    needs: readonly FlowAccess[] = ['owner', 'coOwner', 'user', 'admin'],
  ): Promise<FlowView> {
    const flow = await find(principal.tenant.id, id)
    const access = flow && (await accessOf(principal, flow))
    if (!flow || !access) throw new AppError('ResourceNotFound')
    if (!needs.includes(access))
      throw new AppError('Forbidden', { details: { requiredAccess: needs } })
    return { flow, version: await currentVersion(flow), access }
  }

  async function addVersion(
    on: Kysely<Database>,
    flow: FlowRow,
    version: number,
    manifest: FlowManifest,
    checked: ReturnType<typeof checkPackage>,
    at: string,
  ) {
    await on
      .insertInto('flow_versions')
      .values({
        id: deps.newId(),
        tenant_id: flow.tenant_id,
        flow_id: flow.id,
        version,
        content_hash: checked.contentHash,
        manifest: JSON.stringify(manifest),
        files: JSON.stringify(checked.files),
        size_bytes: checked.sizeBytes,
        created_at: at,
      })
      .execute()
  }

  async function pushOnce(
    principal: Principal,
    environmentId: string,
    manifest: FlowManifest,
    checked: ReturnType<typeof checkPackage>,
  ): Promise<FlowView & { created: boolean; changed: boolean }> {
    const at = now()
    const existing = await db
      .selectFrom('desktop_flows')
      .selectAll()
      .where('tenant_id', '=', principal.tenant.id)
      .where('environment_id', '=', environmentId)
      .where('name', '=', manifest.name)
      .executeTakeFirst()
    if (existing) {
      const access = await accessOf(principal, existing)
      if (access !== 'owner' && access !== 'coOwner' && access !== 'admin')
        throw new AppError('FlowNameInUse')
      const current = await currentVersion(existing)
      if (current.content_hash === checked.contentHash)
        return { flow: existing, version: current, access, created: false, changed: false }
      const next = existing.current_version + 1
      await db.transaction().execute(async (trx) => {
        await addVersion(trx, existing, next, manifest, checked, at)
        await trx
          .updateTable('desktop_flows')
          .set({ current_version: next, updated_at: at })
          .where('id', '=', existing.id)
          .execute()
      })
      const flow = { ...existing, current_version: next, updated_at: at }
      await audit(principal, flow, 'desktopFlow.push', { version: next })
      return { flow, version: await currentVersion(flow), access, created: false, changed: true }
    }
    if (!principal.isTenantAdmin) {
      const roles = await deps.access.rolesIn(principal, environmentId)
      if (!roles.some((r) => FLOW_CREATOR_ROLES.includes(r)))
        throw new AppError('Forbidden', { details: { requiredRole: FLOW_CREATOR_ROLES } })
    }
    const flow: FlowRow = {
      id: deps.newId(),
      tenant_id: principal.tenant.id,
      environment_id: environmentId,
      name: manifest.name,
      owner_type: principal.type,
      owner_id: principal.id,
      current_version: 1,
      created_at: at,
      updated_at: at,
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('desktop_flows').values(flow).execute()
      await addVersion(trx, flow, 1, manifest, checked, at)
    })
    await audit(principal, flow, 'desktopFlow.create', { version: 1 })
    return {
      flow,
      version: await currentVersion(flow),
      access: 'owner',
      created: true,
      changed: true,
    }
  }

  return {
    view,
    find,
    currentVersion,
    accessOf,

    /**
     * Creates the flow, or adds a version to the flow of that name. A flow and its version, or
     * a version and the flow's move to it, are stored together. Pushes of one name at once are
     * told apart by the database (one name per environment, one number per version): the one
     * that loses looks again and is added after the other.
     */
    async push(
      principal: Principal,
      environmentId: string,
      input: { manifest: FlowManifest; files: PackageFile[] },
    ): Promise<FlowView & { created: boolean; changed: boolean }> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const checked = checkPackage(input.manifest, input.files)
      for (let attempt = 1; ; attempt++) {
        try {
          return await pushOnce(principal, environmentId, input.manifest, checked)
        } catch (error) {
          if (!deps.isUniqueViolation(error)) throw error
          if (attempt >= PUSH_ATTEMPTS)
            throw new AppError('ServiceUnavailable', {
              message: 'Other pushes of this desktop flow are going on. Push again.',
              details: { retryAfterSeconds: 1 },
            })
        }
      }
    },

    async list(principal: Principal, environmentId: string): Promise<FlowView[]> {
      await deps.access.assertEnvironmentVisible(principal, environmentId)
      const flows = await db
        .selectFrom('desktop_flows')
        .selectAll()
        .where('tenant_id', '=', principal.tenant.id)
        .where('environment_id', '=', environmentId)
        .orderBy('name')
        .execute()
      const visible: FlowView[] = []
      for (const flow of flows) {
        const access = await accessOf(principal, flow)
        if (access) visible.push({ flow, version: await currentVersion(flow), access })
      }
      return visible
    },

    async delete(principal: Principal, id: string): Promise<void> {
      const { flow } = await view(principal, id, ['owner', 'coOwner', 'admin'])
      await audit(principal, flow, 'desktopFlow.delete')
      await deps.shares.deleteAllFor(principal.tenant.id, 'desktopFlow', id)
      await db.deleteFrom('desktop_flows').where('id', '=', flow.id).execute()
    },

    async listShares(principal: Principal, id: string): Promise<ShareRecord[]> {
      await view(principal, id, ['owner', 'coOwner', 'admin'])
      return deps.shares.list(principal.tenant.id, 'desktopFlow', id)
    },

    async share(
      principal: Principal,
      id: string,
      input: {
        principalType: 'user' | 'servicePrincipal'
        principalId: string
        access: 'coOwner' | 'user'
      },
      principalExists: (type: string, id: string) => Promise<boolean>,
    ): Promise<ShareRecord> {
      const { flow } = await view(principal, id, ['owner', 'coOwner', 'admin'])
      if (!(await principalExists(input.principalType, input.principalId)))
        throw new AppError('InvalidRequestBody', {
          message: 'The principal does not exist in this tenant.',
          details: { field: 'principalId' },
        })
      const record: ShareRecord = {
        id: deps.newId(),
        tenant_id: principal.tenant.id,
        resource_type: 'desktopFlow',
        resource_id: flow.id,
        principal_type: input.principalType,
        principal_id: input.principalId,
        access: input.access,
        created_at: now(),
      }
      await deps.shares.insert(record)
      await audit(principal, flow, 'desktopFlow.share', {
        principalId: input.principalId,
        access: input.access,
      })
      return record
    },

    async unshare(principal: Principal, id: string, shareId: string): Promise<void> {
      const { flow } = await view(principal, id, ['owner', 'coOwner', 'admin'])
      if (!(await deps.shares.delete(principal.tenant.id, 'desktopFlow', id, shareId)))
        throw new AppError('ResourceNotFound')
      await audit(principal, flow, 'desktopFlow.unshare', { shareId })
    },

    /** The files of a package, for a machine of the tenant that was offered a run of it. */
    async packageFor(
      tenantId: string,
      machineId: string,
      contentHash: string,
    ): Promise<{ manifest: FlowManifest; files: PackageFile[] } | undefined> {
      const row = await db
        .selectFrom('flow_versions')
        .innerJoin('runs', 'runs.flow_version_id', 'flow_versions.id')
        .select(['flow_versions.manifest', 'flow_versions.files'])
        .where('flow_versions.tenant_id', '=', tenantId)
        .where('flow_versions.content_hash', '=', contentHash)
        .where('runs.machine_id', '=', machineId)
        // Only for a run it holds now; also what lets the index of running runs answer.
        .where('runs.status', '=', sql.lit('Running'))
        .executeTakeFirst()
      return (
        row && {
          manifest: JSON.parse(row.manifest) as FlowManifest,
          files: JSON.parse(row.files) as PackageFile[],
        }
      )
    },
  }
}

export type FlowService = ReturnType<typeof createFlowService>
