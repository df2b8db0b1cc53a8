/**
 * The identity stores bound to one database handle: the pool, or a transaction. Services ask
 * for a transaction and receive the same stores bound to it.
 *
 * @module
 */
import type { Insertable, Kysely } from 'kysely'

import type { Database, SigningKeyTable } from '../storage/index.ts'
import { createPrincipalStore, type PrincipalStore } from './principal-store.ts'
import { createRoleAssignmentStore, type RoleAssignmentStore } from './role-assignment-store.ts'
import { createTenantStore, type TenantStore } from './tenant-store.ts'

export interface IdentityStores {
  readonly tenants: TenantStore
  readonly principals: PrincipalStore
  readonly roles: RoleAssignmentStore
  insertSigningKey(row: Insertable<SigningKeyTable>): Promise<void>
}

export function createIdentityStores(db: Kysely<Database>): IdentityStores {
  return {
    tenants: createTenantStore(db),
    principals: createPrincipalStore(db),
    roles: createRoleAssignmentStore(db),
    async insertSigningKey(row) {
      await db.insertInto('signing_keys').values(row).execute()
    },
  }
}

/** Runs `work` in one transaction with stores bound to it. */
export function createIdentityTransaction(db: Kysely<Database>) {
  return <T>(work: (stores: IdentityStores) => Promise<T>): Promise<T> =>
    db.transaction().execute((tx) => work(createIdentityStores(tx)))
}
