/**
 * The agent-local trust policy: a file on the machine, owned by root, that the server cannot
 * change. It says which tenants this machine may be registered to (and, later, whose
 * connect-with-sign-in tokens it trusts), how tenant users map to OS accounts (`join`), and
 * whether the registration is re-checked at every start (`enforceOnStart`).
 *
 * ```json
 * { "allowedTenants": ["<tenant id>"], "join": { "type": "none" }, "enforceOnStart": true }
 * ```
 *
 * Without a policy file the agent allows any tenant and joins nothing, as Power Automate does
 * without `AllowedRegistrationTenants`; it says so in its log.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs'

import { z } from 'zod'

import { AgentError } from '../agent-error.ts'

const Join = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  /** Users of this tenant map to OS accounts of the same user name. */
  z.strictObject({ type: z.literal('tenant'), tenantId: z.uuid() }),
  /** Users map to accounts of this directory domain (`user@domain`, `DOMAIN\user`). */
  z.strictObject({ type: z.literal('domain'), domain: z.string().min(1).max(255) }),
])

export const AgentPolicy = z.strictObject({
  /** Tenant ids this machine may register to. Absent: any tenant. */
  allowedTenants: z.array(z.uuid()).max(100).optional(),
  join: Join.default({ type: 'none' }),
  enforceOnStart: z.boolean().default(false),
})
export type AgentPolicy = z.infer<typeof AgentPolicy>

export interface LoadedPolicy {
  readonly policy: AgentPolicy
  /** False when no policy file exists and the permissive default applies. */
  readonly fromFile: boolean
}

/**
 * Reads the policy. The file must be owned by root (or by the user the agent runs as) and be
 * writable by nobody else: otherwise anyone who can edit it could widen the machine's trust.
 */
export function loadAgentPolicy(
  file: string,
  processUid: number = process.getuid?.() ?? 0,
): LoadedPolicy {
  if (!existsSync(file)) return { policy: AgentPolicy.parse({}), fromFile: false }
  const stat = statSync(file)
  if ((stat.uid !== 0 && stat.uid !== processUid) || (stat.mode & 0o022) !== 0) {
    throw new AgentError('UnsafePolicyFile', {
      details: { file, uid: stat.uid, mode: (stat.mode & 0o777).toString(8) },
    })
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (cause) {
    throw new AgentError('InvalidPolicy', {
      message: `The agent policy ${file} is not valid JSON.`,
      cause,
    })
  }
  const parsed = AgentPolicy.safeParse(json)
  if (!parsed.success) {
    throw new AgentError('InvalidPolicy', {
      message: `The agent policy ${file} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    })
  }
  return { policy: parsed.data, fromFile: true }
}

/** Refuses a tenant the policy does not allow, with the reference's code. */
export function assertTenantAllowed(
  policy: AgentPolicy,
  tenantId: string,
  code: 'UnauthorizedRegistrationToNonAllowListedTenant' | 'RegistrationNoLongerAllowed',
): void {
  if (policy.allowedTenants !== undefined && !policy.allowedTenants.includes(tenantId)) {
    throw new AgentError(code, { details: { tenantId } })
  }
}
