/**
 * First start: when the database has no tenant, create the `default` tenant with its
 * `default` environment and the administrator, who is also the platform administrator. The
 * password comes from `DESKLINK_ADMIN_PASSWORD` or is generated and returned once, for the
 * caller to print; only its scrypt hash is stored.
 *
 * @module
 */
import type { IdentityService } from '../identity/identity-service.ts'
import type { TenantStore } from '../identity/tenant-store.ts'

export const DEFAULT_TENANT_SLUG = 'default'

export interface BootstrapResult {
  readonly created: boolean
  readonly adminUsername?: string
  /** Present only when the password was generated: print it once, then it is gone. */
  readonly generatedPassword?: string
}

export async function bootstrapFirstStart(deps: {
  tenants: Pick<TenantStore, 'countTenants'>
  identity: Pick<IdentityService, 'createTenant'>
  adminUsername: string
  adminPassword: string | undefined
  isUniqueViolation: (error: unknown) => boolean
}): Promise<BootstrapResult> {
  if ((await deps.tenants.countTenants()) > 0) return { created: false }
  try {
    const { admin, generatedPassword } = await deps.identity.createTenant({
      slug: DEFAULT_TENANT_SLUG,
      displayName: 'Default tenant',
      adminUsername: deps.adminUsername,
      adminPassword: deps.adminPassword,
      isPlatformAdmin: true,
    })
    return generatedPassword === undefined
      ? { created: true, adminUsername: admin.username }
      : { created: true, adminUsername: admin.username, generatedPassword }
  } catch (error) {
    // Another replica bootstrapped at the same moment: its tenant stands.
    if ((error as { code?: string }).code === 'NameAlreadyInUse' || deps.isUniqueViolation(error)) {
      return { created: false }
    }
    throw error
  }
}
