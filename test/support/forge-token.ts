/**
 * Mints tokens with a tenant's real signing key, read the way the server reads it (sealed in
 * the database, opened with the master key in the data directory). Lets tests present tokens
 * whose signature is valid but whose claims are wrong: audience, type, scope, expiry.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { importJWK, type JWK, SignJWT } from 'jose'

import { createSecretBox, decodeMasterKey } from '../../packages/server/src/secrets/index.ts'
import { openStorage } from '../../packages/server/src/storage/index.ts'
import type { InProcessTestServer } from './test-server.ts'

export async function forgeWithTenantKey(
  t: InProcessTestServer,
  tenantSlug: string,
  claims: Record<string, unknown>,
  options: { typ?: string; expiresInSeconds?: number; issuer?: string } = {},
): Promise<string> {
  const storage = openStorage(t.database.url)
  try {
    const tenant = await storage.db
      .selectFrom('tenants')
      .selectAll()
      .where('slug', '=', tenantSlug)
      .executeTakeFirstOrThrow()
    const key = await storage.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('tenant_id', '=', tenant.id)
      .executeTakeFirstOrThrow()
    const box = createSecretBox(
      decodeMasterKey(readFileSync(join(t.dataDir, 'master.key'), 'utf8')),
    )
    const privateKey = await importJWK(
      JSON.parse(box.open(key.private_jwk_sealed, key.kid)) as JWK,
      'EdDSA',
    )
    const now = Math.floor(Date.now() / 1000)
    return await new SignJWT({
      tid: tenant.id,
      ptype: 'user',
      client_id: 'desklink-cli',
      scope: 'api',
      ...claims,
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: options.typ ?? 'at+jwt' })
      .setIssuer(options.issuer ?? `${t.server.publicUrl}/t/${tenantSlug}`)
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresInSeconds ?? 300))
      .sign(privateKey)
  } finally {
    await storage.close()
  }
}
