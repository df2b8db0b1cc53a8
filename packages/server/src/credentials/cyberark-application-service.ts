/**
 * CyberArk applications of machines and groups (reference §1.7, §2.8): the application id and
 * the client certificate the machines present to CCP. The certificate and key are sealed to
 * the group's public key at once and the plaintext is dropped, so only member machines can use
 * it. Refused on machines and groups shared with others.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from 'node:crypto'

import { sealToGroup } from '@desklink/protocol'
import type { Kysely, Selectable } from 'kysely'

import { AppError } from '../errors/index.ts'
import type { Principal } from '../identity/principal.ts'
import { assertManage } from '../machines/machine-access.ts'
import type { MachineService } from '../machines/machine-service.ts'
import type { ShareStore } from '../sharing/share-store.ts'
import type { CyberArkApplicationTable, Database } from '../storage/index.ts'
import type { Clock } from '../system/index.ts'

export type CyberArkApplicationRow = Selectable<CyberArkApplicationTable>

export function createCyberArkApplicationService(deps: {
  db: Kysely<Database>
  machines: MachineService
  shares: ShareStore
  clock: Clock
}) {
  const { db } = deps

  /** The group a machine or group id stands for, with the caller's right to manage it checked. */
  async function target(principal: Principal, kind: 'machine' | 'group', id: string) {
    if (kind === 'group') {
      const { group, access } = await deps.machines.getGroup(principal, id)
      return {
        groupId: group.id,
        publicKey: group.publicKey,
        access,
        shared: (await deps.shares.list(principal.tenant.id, 'machineGroup', id)).length > 0,
      }
    }
    const { machine, access } = await deps.machines.getMachine(principal, id)
    const group = await db
      .selectFrom('machine_groups')
      .select('public_key')
      .where('id', '=', machine.standaloneGroupId)
      .executeTakeFirst()
    return {
      groupId: machine.standaloneGroupId,
      publicKey: group?.public_key ?? null,
      access,
      shared: (await deps.shares.list(principal.tenant.id, 'machine', id)).length > 0,
    }
  }

  return {
    async set(
      principal: Principal,
      kind: 'machine' | 'group',
      id: string,
      input: { appId: string; certificatePem: string; description: string },
    ): Promise<CyberArkApplicationRow> {
      const { groupId, publicKey, access, shared } = await target(principal, kind, id)
      assertManage(access)
      if (shared) throw new AppError('CyberArkOnSharedResource')
      if (!publicKey)
        throw new AppError('InvalidRequestBody', {
          message: 'The group has no key yet: a machine must join it first.',
        })
      let subject: string
      try {
        subject = new X509Certificate(input.certificatePem).subject
        createPrivateKey(input.certificatePem)
      } catch (cause) {
        throw new AppError('InvalidCertificate', {
          message: 'Send the client certificate followed by its private key, both PEM.',
          cause,
        })
      }
      const row: CyberArkApplicationRow = {
        group_id: groupId,
        tenant_id: principal.tenant.id,
        app_id: input.appId,
        description: input.description,
        certificate_subject: subject,
        sealed_certificate: await sealToGroup(
          publicKey,
          input.certificatePem,
          `cyberark:${groupId}`,
        ),
        created_at: deps.clock.now().toISOString(),
      }
      await db
        .deleteFrom('cyberark_applications')
        .where('tenant_id', '=', principal.tenant.id)
        .where('group_id', '=', groupId)
        .execute()
      await db.insertInto('cyberark_applications').values(row).execute()
      return row
    },
    async get(
      principal: Principal,
      kind: 'machine' | 'group',
      id: string,
    ): Promise<CyberArkApplicationRow> {
      const { groupId } = await target(principal, kind, id)
      const row = await db
        .selectFrom('cyberark_applications')
        .selectAll()
        .where('tenant_id', '=', principal.tenant.id)
        .where('group_id', '=', groupId)
        .executeTakeFirst()
      if (!row) throw new AppError('ResourceNotFound')
      return row
    },
    async delete(principal: Principal, kind: 'machine' | 'group', id: string): Promise<void> {
      const { groupId, access } = await target(principal, kind, id)
      assertManage(access)
      const result = await db
        .deleteFrom('cyberark_applications')
        .where('tenant_id', '=', principal.tenant.id)
        .where('group_id', '=', groupId)
        .executeTakeFirst()
      if (Number(result.numDeletedRows) === 0) throw new AppError('ResourceNotFound')
    },
  }
}

export type CyberArkApplicationService = ReturnType<typeof createCyberArkApplicationService>
