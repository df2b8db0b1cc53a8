/**
 * Connect-with-sign-in tokens: what the server mints for a sign-in connection and the machine
 * verifies before it acts for the user. They are the tenant's ordinary access tokens (EdDSA,
 * `typ: at+jwt`, issuer `<server>/t/<tenant slug>`, key in the tenant's JWKS) with one scope,
 * `desktopflows.execute`, and one audience, the target machine group (RFC 8707 resource).
 *
 * @module
 */

/** The only scope a sign-in connection's token carries. */
export const SIGN_IN_SCOPE = 'desktopflows.execute'

const GROUP_AUDIENCE_PREFIX = 'urn:desklink:group:'

/** The audience (and `resource` parameter) naming one machine group. */
export const groupAudience = (groupId: string): string => `${GROUP_AUDIENCE_PREFIX}${groupId}`

/** The group an audience names, or undefined when it names none. */
export function groupOfAudience(audience: string): string | undefined {
  const match = /^urn:desklink:group:([0-9a-f-]{36})$/i.exec(audience)
  return match?.[1]?.toLowerCase()
}
