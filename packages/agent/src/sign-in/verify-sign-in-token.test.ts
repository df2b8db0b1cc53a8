import { randomUUID } from 'node:crypto'

import { groupAudience } from '@desklink/protocol'
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'

import type { AgentPolicy } from '../policy/agent-policy.ts'
import { type SignInTrust, trustedTenants, verifySignInToken } from './verify-sign-in-token.ts'

const SERVER = 'https://desklink.example'
const ISSUER = `${SERVER}/t/contoso`
const TENANT = randomUUID()
const GROUP = randomUUID()

type Keys = Awaited<ReturnType<typeof generateKeyPair>>
let tenantKey: Keys
let strangerKey: Keys
let jwk: JWK

beforeAll(async () => {
  tenantKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
  strangerKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
  jwk = { ...(await exportJWK(tenantKey.publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' }
})

const joined: AgentPolicy = {
  join: { type: 'tenant', tenantId: TENANT },
  enforceOnStart: false,
}

function trust(policy: AgentPolicy = joined, memberOf = GROUP): SignInTrust {
  return {
    serverUrl: SERVER,
    memberOf,
    policy,
    keysOf: (issuer) => {
      if (issuer !== ISSUER) throw new Error('unexpected issuer')
      return createLocalJWKSet({ keys: [jwk] })
    },
  }
}

interface TokenShape {
  iss?: string
  aud?: string
  scope?: string
  tid?: string
  ptype?: string
  expiresIn?: number
  typ?: string
  key?: 'tenant' | 'stranger'
}

function token(shape: TokenShape = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    tid: shape.tid ?? TENANT,
    ptype: shape.ptype ?? 'user',
    scope: shape.scope ?? 'desktopflows.execute',
    preferred_username: 'alice@contoso.example',
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: shape.typ ?? 'at+jwt' })
    .setIssuer(shape.iss ?? ISSUER)
    .setSubject(randomUUID())
    .setAudience(shape.aud ?? groupAudience(GROUP))
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (shape.expiresIn ?? 300))
    .sign((shape.key === 'stranger' ? strangerKey : tenantKey).privateKey)
}

describe('the machine verifies every sign-in token it receives', () => {
  it('accepts a current token of a trusted tenant for its group and names the person', async () => {
    const checked = await verifySignInToken(await token(), GROUP, trust())
    expect(checked).toMatchObject({ ok: true, tenantId: TENANT, username: 'alice@contoso.example' })
  })

  it.each<[string, TokenShape]>([
    ['a wrong audience', { aud: groupAudience(randomUUID()) }],
    ['the API audience', { aud: 'desklink-api' }],
    ['a wrong scope', { scope: 'api' }],
    ['an expired token', { expiresIn: -120 }],
    ['a forged signature', { key: 'stranger' }],
    ['another server as issuer', { iss: 'https://evil.example/t/contoso' }],
    ['a service principal', { ptype: 'servicePrincipal' }],
    ['another token type', { typ: 'JWT' }],
  ])('refuses %s as invalidToken', async (_what, shape) => {
    const checked = await verifySignInToken(await token(shape), GROUP, trust())
    expect(checked).toMatchObject({ ok: false, reason: 'invalidToken' })
  })

  it('refuses a token for a group this machine does not act for', async () => {
    const checked = await verifySignInToken(await token(), GROUP, trust(joined, randomUUID()))
    expect(checked).toMatchObject({ ok: false, reason: 'invalidToken' })
  })

  it('refuses garbage without throwing', async () => {
    const checked = await verifySignInToken('not-a-jwt', GROUP, trust())
    expect(checked).toMatchObject({ ok: false, reason: 'invalidToken' })
  })

  it('refuses a token of another tenant as not allowlisted', async () => {
    const checked = await verifySignInToken(await token({ tid: randomUUID() }), GROUP, trust())
    expect(checked).toMatchObject({ ok: false, reason: 'tenantNotAllowlisted' })
  })

  it('refuses its own tenant once allowedTenants leaves it out', async () => {
    const policy: AgentPolicy = { ...joined, allowedTenants: [randomUUID()] }
    const checked = await verifySignInToken(await token(), GROUP, trust(policy))
    expect(checked).toMatchObject({ ok: false, reason: 'tenantNotAllowlisted' })
  })

  it('answers machineNotJoined on a machine joined to nothing, before looking at the token', async () => {
    const policy: AgentPolicy = { join: { type: 'none' }, enforceOnStart: false }
    const checked = await verifySignInToken('not-a-jwt', GROUP, trust(policy))
    expect(checked).toMatchObject({ ok: false, reason: 'machineNotJoined' })
  })

  it('trusts a domain-joined machine only for tenants it lists', () => {
    const domain: AgentPolicy = {
      join: { type: 'domain', domain: 'corp.example' },
      enforceOnStart: false,
    }
    expect(trustedTenants(domain)).toEqual([])
    expect(trustedTenants({ ...domain, allowedTenants: [TENANT] })).toEqual([TENANT])
    expect(trustedTenants(joined)).toEqual([TENANT])
  })
})
