/**
 * Per-tenant token signing keys. Each tenant is its own authorization server, so each has its
 * own Ed25519 key pair (EdDSA): its public half is published in the tenant's JWKS, its private
 * half is stored sealed with the master key and opened only in memory.
 *
 * Keys are immutable once written, so the in-memory cache needs no invalidation across
 * replicas; a later key rotation adds keys and retires old ones without changing this contract.
 *
 * @module
 */
import {
  calculateJwkThumbprint,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose'
import type { Insertable, Kysely } from 'kysely'

import type { SecretBox } from '../secrets/index.ts'
import type { Database, SigningKeyTable } from '../storage/index.ts'
import type { Clock } from '../system/index.ts'

export const SIGNING_ALG = 'EdDSA'

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
}

export interface SigningKeyService {
  /** Generates a key pair for the tenant and returns the row to store, private half sealed. */
  prepareKey(tenantId: string): Promise<Insertable<SigningKeyTable>>
  /** The key new tokens of the tenant are signed with. */
  activeKey(tenantId: string): Promise<SigningKey>
  /** The tenant's public keys, as served at `<issuer>/.well-known/jwks.json`. */
  jwks(tenantId: string): Promise<{ keys: JWK[] }>
}

export function createSigningKeyService(deps: {
  db: Kysely<Database>
  secretBox: SecretBox
  clock: Clock
}): SigningKeyService {
  const { db, secretBox, clock } = deps
  const activeByTenant = new Map<string, Promise<SigningKey>>()

  async function loadActive(tenantId: string): Promise<SigningKey> {
    const row = await db
      .selectFrom('signing_keys')
      .select(['kid', 'private_jwk_sealed'])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'active')
      .orderBy('created_at', 'desc')
      .executeTakeFirst()
    if (!row) throw new Error(`Tenant ${tenantId} has no active signing key`)
    const jwk = JSON.parse(secretBox.open(row.private_jwk_sealed, row.kid)) as JWK
    const privateKey = (await importJWK(jwk, SIGNING_ALG)) as CryptoKey
    return { kid: row.kid, privateKey }
  }

  return {
    async prepareKey(tenantId) {
      const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, {
        crv: 'Ed25519',
        extractable: true,
      })
      const publicJwk = await exportJWK(publicKey)
      const kid = await calculateJwkThumbprint(publicJwk)
      const privateJwk = await exportJWK(privateKey)
      return {
        kid,
        tenant_id: tenantId,
        alg: SIGNING_ALG,
        public_jwk: JSON.stringify({ ...publicJwk, kid, alg: SIGNING_ALG, use: 'sig' }),
        private_jwk_sealed: secretBox.seal(JSON.stringify(privateJwk), kid),
        status: 'active',
        created_at: clock.now().toISOString(),
      }
    },
    activeKey(tenantId) {
      let key = activeByTenant.get(tenantId)
      if (!key) {
        key = loadActive(tenantId)
        activeByTenant.set(tenantId, key)
        key.catch(() => activeByTenant.delete(tenantId))
      }
      return key
    },
    async jwks(tenantId) {
      const rows = await db
        .selectFrom('signing_keys')
        .select('public_jwk')
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .execute()
      return { keys: rows.map((row) => JSON.parse(row.public_jwk) as JWK) }
    },
  }
}
