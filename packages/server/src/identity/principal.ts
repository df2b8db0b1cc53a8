/**
 * The authenticated caller of one request, and the rules every identity operation asks of it.
 *
 * @module
 */
import type { PrincipalType } from '@desklink/protocol'

import { AppError } from '../errors/index.ts'
import type { TenantRecord } from './tenant-store.ts'

/** Who is calling: resolved once per request by the authentication middleware. */
export interface Principal {
  readonly type: PrincipalType
  readonly id: string
  readonly name: string
  readonly tenant: TenantRecord
  readonly isTenantAdmin: boolean
  readonly isPlatformAdmin: boolean
  readonly scopes: readonly string[]
}

/** Tenant administrators manage the tenant's principals and environments. */
export function assertTenantAdmin(principal: Principal): void {
  if (!principal.isTenantAdmin) {
    throw new AppError('Forbidden', { details: { requiredRole: 'TenantAdmin' } })
  }
}

/** The platform administrator (the first admin of the first tenant) manages tenants. */
export function assertPlatformAdmin(principal: Principal): void {
  if (!principal.isPlatformAdmin) {
    throw new AppError('Forbidden', { details: { requiredRole: 'PlatformAdmin' } })
  }
}
