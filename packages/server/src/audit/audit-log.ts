/**
 * Records audit events. Details never hold secrets: callers pass ids, names and codes only.
 *
 * @module
 */
import type { Kysely } from 'kysely'

import type { Principal } from '../identity/principal.ts'
import type { Database } from '../storage/index.ts'
import type { Clock, IdGenerator } from '../system/index.ts'

export interface AuditEvent {
  readonly principal: Principal
  readonly environmentId: string | null
  readonly action: string
  readonly targetType: string
  readonly targetId: string
  readonly outcome: 'success' | 'denied'
  readonly details?: Record<string, unknown>
}

export interface AuditLog {
  record(event: AuditEvent): Promise<void>
}

export function createAuditLog(deps: {
  db: Kysely<Database>
  clock: Clock
  newId: IdGenerator
}): AuditLog {
  return {
    async record(event) {
      await deps.db
        .insertInto('audit_events')
        .values({
          id: deps.newId(),
          tenant_id: event.principal.tenant.id,
          environment_id: event.environmentId,
          actor_type: event.principal.type,
          actor_id: event.principal.id,
          action: event.action,
          target_type: event.targetType,
          target_id: event.targetId,
          outcome: event.outcome,
          details: JSON.stringify(event.details ?? {}),
          created_at: deps.clock.now().toISOString(),
        })
        .execute()
    },
  }
}
