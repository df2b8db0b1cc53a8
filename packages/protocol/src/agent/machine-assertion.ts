/**
 * How an agent proves it is a registered machine: for each channel connect and each agent API
 * call it signs a short JWT with its Ed25519 identity key (the private half never leaves the
 * machine). No long-lived bearer secret exists on the machine.
 *
 * Claims: `iss` = `sub` = machine id, `aud` = `<server public URL>/api/v1/agent`, `iat`, `exp`
 * (at most 5 minutes later), `jti` (single use). Header `typ: desklink-machine+jwt`.
 *
 * @module
 */

export const MACHINE_ASSERTION_TYP = 'desklink-machine+jwt'
export const MACHINE_ASSERTION_MAX_SECONDS = 300
/** The header agent API calls carry the assertion in. */
export const MACHINE_ASSERTION_HEADER = 'x-desklink-machine-assertion'

export const machineAssertionAudience = (publicUrl: string): string =>
  `${publicUrl.replace(/\/$/, '')}/api/v1/agent`

/**
 * Registration tokens embed the tenant and environment they are for, so that the agent can
 * check its local policy before it sends anything: `dlr.<tenantId>.<environmentId>.<secret>`.
 */
export function parseRegistrationToken(
  token: string,
): { tenantId: string; environmentId: string } | undefined {
  const match = /^dlr\.([0-9a-f-]{36})\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{32,})$/.exec(token.trim())
  return match ? { tenantId: match[1], environmentId: match[2] } : undefined
}
