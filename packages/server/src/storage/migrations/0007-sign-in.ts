/**
 * Connect with sign-in: authorization codes and refresh tokens remember the audience they were
 * granted for (a machine group, RFC 8707 `resource`), and a sign-in connection keeps its
 * refresh token sealed under the master key.
 *
 * @module
 */
import type { Kysely, Migration } from 'kysely'

export const migration0007SignIn: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('authorization_codes').addColumn('audience', 'text').execute()
    await db.schema.alterTable('refresh_tokens').addColumn('audience', 'text').execute()
    await db.schema.alterTable('connections').addColumn('sealed_refresh_token', 'text').execute()
  },
}
