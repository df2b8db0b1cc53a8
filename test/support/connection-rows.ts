/**
 * A connection stored as `Connected` without its test: for runs to targets no agent in the test
 * can vouch for (an empty group, a group of machines without the account, a missing group).
 */
import { randomUUID } from 'node:crypto'

import type { Kysely } from 'kysely'

import type { Database } from '../../packages/server/src/storage/index.ts'

export interface ConnectionOwner {
  readonly tenantId: string
  readonly environmentId: string
  /** The user who owns it and is its run owner. */
  readonly userId: string
}

/** Stores a connection of `owner` to `targetGroupId` (a password one unless told); its id. */
export async function insertConnectionRow(
  db: Kysely<Database>,
  owner: ConnectionOwner,
  targetGroupId: string,
  { type = 'password', name }: { type?: 'password' | 'signIn'; name?: string } = {},
): Promise<string> {
  const id = randomUUID()
  const at = new Date().toISOString()
  await db
    .insertInto('connections')
    .values({
      id,
      tenant_id: owner.tenantId,
      environment_id: owner.environmentId,
      name: name ?? `fixture-${id}`,
      target_group_id: targetGroupId,
      type,
      username: 'svc',
      sealed_password: 'sealed',
      sealed_refresh_token: null,
      credential_id: null,
      owner_type: 'user',
      owner_id: owner.userId,
      run_owner_type: 'user',
      run_owner_id: owner.userId,
      run_owner_explicit: 0,
      status: 'Connected',
      status_error: null,
      os_account: 'svc',
      last_tested_at: at,
      last_used_at: null,
      created_at: at,
      updated_at: at,
    })
    .execute()
  return id
}
