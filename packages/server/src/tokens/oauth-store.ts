/**
 * OAuth2 state: authorization codes, refresh tokens and used client-assertion ids. Only
 * SHA-256 hashes of codes, tokens and ids are stored, so a copy of the database grants nothing.
 *
 * @module
 */
import { createHash } from 'node:crypto'

import type { Kysely, Selectable } from 'kysely'

import type { AuthorizationCodeTable, Database, RefreshTokenTable } from '../storage/index.ts'

export const hashOpaque = (value: string): string =>
  createHash('sha256').update(value, 'utf8').digest('base64url')

export type AuthorizationCodeRow = Selectable<AuthorizationCodeTable>
export type RefreshTokenRow = Selectable<RefreshTokenTable>

export function createOAuthStore(db: Kysely<Database>) {
  return {
    async saveCode(row: AuthorizationCodeRow): Promise<void> {
      await db.insertInto('authorization_codes').values(row).execute()
    },
    async findCode(tenantId: string, code: string): Promise<AuthorizationCodeRow | undefined> {
      return db
        .selectFrom('authorization_codes')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('code_hash', '=', hashOpaque(code))
        .executeTakeFirst()
    },
    /** Deletes the code; true only for the one caller that deleted it (single use). */
    async consumeCode(tenantId: string, code: string): Promise<boolean> {
      const result = await db
        .deleteFrom('authorization_codes')
        .where('tenant_id', '=', tenantId)
        .where('code_hash', '=', hashOpaque(code))
        .executeTakeFirst()
      return Number(result.numDeletedRows) === 1
    },

    async saveRefreshToken(row: RefreshTokenRow): Promise<void> {
      await db.insertInto('refresh_tokens').values(row).execute()
    },
    async findRefreshToken(tenantId: string, token: string): Promise<RefreshTokenRow | undefined> {
      return db
        .selectFrom('refresh_tokens')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_hash', '=', hashOpaque(token))
        .executeTakeFirst()
    },
    /** Marks the token used; true only for the one caller that rotated it. */
    async rotateRefreshToken(tenantId: string, token: string, at: string): Promise<boolean> {
      const result = await db
        .updateTable('refresh_tokens')
        .set({ rotated_at: at })
        .where('tenant_id', '=', tenantId)
        .where('token_hash', '=', hashOpaque(token))
        .where('rotated_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
    async revokeFamily(tenantId: string, familyId: string, at: string): Promise<void> {
      await db
        .updateTable('refresh_tokens')
        .set({ revoked_at: at })
        .where('tenant_id', '=', tenantId)
        .where('family_id', '=', familyId)
        .where('revoked_at', 'is', null)
        .execute()
    },

    /** Records an assertion id; false when it was seen before (a replay). */
    async recordAssertion(
      tenantId: string,
      jti: string,
      expiresAt: string,
      now: string,
    ): Promise<boolean> {
      await db.deleteFrom('used_assertions').where('expires_at', '<', now).execute()
      const result = await db
        .insertInto('used_assertions')
        .values({
          jti_hash: hashOpaque(`${tenantId}:${jti}`),
          tenant_id: tenantId,
          expires_at: expiresAt,
        })
        .onConflict((oc) => oc.column('jti_hash').doNothing())
        .executeTakeFirst()
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1
    },
  }
}

export type OAuthStore = ReturnType<typeof createOAuthStore>
