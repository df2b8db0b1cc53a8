/**
 * The tenant authorization servers, end to end over HTTP: authorization code with PKCE,
 * client credentials with a secret and with private_key_jwt, refresh rotation and reuse
 * detection, and tokens verified against the tenant's JWKS by a standard JWT library.
 */
import { randomUUID } from 'node:crypto'

import { createRemoteJWKSet, exportSPKI, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BACKENDS } from '../support/backends.ts'
import {
  ADMIN_PASSWORD,
  api,
  authorize,
  clientCredentials,
  exchangeCode,
  pkcePair,
  postForm,
  signIn,
  startTestServer,
  type TestServer,
  type Tokens,
} from '../support/test-server.ts'

describe.each(BACKENDS)('OAuth2 on %s', (backend) => {
  let t: TestServer
  let adminToken: string

  beforeAll(async () => {
    t = await startTestServer(backend)
    adminToken = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
  })
  afterAll(async () => t.close())

  it('publishes metadata whose issuer is <base>/t/<tenant>', async () => {
    const response = await fetch(`${t.url}/t/default/.well-known/oauth-authorization-server`)
    const metadata = (await response.json()) as Record<string, unknown>
    expect(metadata.issuer).toBe(`${t.url}/t/default`)
    expect(metadata.jwks_uri).toBe(`${t.url}/t/default/.well-known/jwks.json`)
    expect(metadata.code_challenge_methods_supported).toEqual(['S256'])
  })

  it('issues user tokens that verify against the tenant JWKS with a standard JWT library', async () => {
    const jwks = createRemoteJWKSet(new URL(`${t.url}/t/default/.well-known/jwks.json`))
    const { payload, protectedHeader } = await jwtVerify(adminToken, jwks, {
      issuer: `${t.url}/t/default`,
      audience: 'desklink-api',
    })
    expect(protectedHeader.alg).toBe('EdDSA')
    expect(payload.scope).toBe('api')
    expect(payload.ptype).toBe('user')
  })

  it('lets a service principal get a client_credentials token and use the API with it', async () => {
    const created = await api(t.url, adminToken, 'POST', '/service-principals', {
      name: 'flows-bot',
    })
    expect(created.status).toBe(201)
    const response = await clientCredentials(
      t.url,
      'default',
      created.body.clientId,
      created.body.secret.clientSecret,
    )
    expect(response.status).toBe(200)
    const tokens = (await response.json()) as Tokens
    expect(tokens.refresh_token).toBeUndefined()
    const jwks = createRemoteJWKSet(new URL(`${t.url}/t/default/.well-known/jwks.json`))
    const { payload } = await jwtVerify(tokens.access_token, jwks, {
      issuer: `${t.url}/t/default`,
      audience: 'desklink-api',
    })
    expect(payload.sub).toBe(created.body.clientId)
    const me = await api(t.url, tokens.access_token, 'GET', '/me')
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ principalType: 'servicePrincipal', name: 'flows-bot' })
  })

  it('refuses a wrong client secret with invalid_client', async () => {
    const created = await api(t.url, adminToken, 'POST', '/service-principals', {
      name: 'wrong-secret-bot',
    })
    const response = await clientCredentials(
      t.url,
      'default',
      created.body.clientId,
      'dls_not-the-secret',
    )
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'invalid_client' })
  })

  it('authenticates a service principal with private_key_jwt and refuses a replayed assertion', async () => {
    const created = await api(t.url, adminToken, 'POST', '/service-principals', {
      name: 'cert-bot',
      withSecret: false,
    })
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const added = await api(
      t.url,
      adminToken,
      'POST',
      `/service-principals/${created.body.id}/certificates`,
      {
        publicKey: await exportSPKI(publicKey),
      },
    )
    expect(added.status).toBe(201)
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(created.body.clientId)
      .setSubject(created.body.clientId)
      .setAudience(`${t.url}/t/default/oauth2/token`)
      .setIssuedAt()
      .setExpirationTime('2m')
      .setJti(randomUUID())
      .sign(privateKey)
    const form = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }
    const first = await postForm(`${t.url}/t/default/oauth2/token`, form)
    expect(first.status).toBe(200)
    const replay = await postForm(`${t.url}/t/default/oauth2/token`, form)
    expect(replay.status).toBe(401)
    expect(await replay.json()).toMatchObject({ error: 'invalid_client' })
  })

  it('refuses an assertion signed by a key that is not registered', async () => {
    const created = await api(t.url, adminToken, 'POST', '/service-principals', {
      name: 'forged-bot',
      withSecret: false,
    })
    const registered = await generateKeyPair('ES256', { extractable: true })
    const added = await api(
      t.url,
      adminToken,
      'POST',
      `/service-principals/${created.body.id}/certificates`,
      {
        publicKey: await exportSPKI(registered.publicKey),
      },
    )
    expect(added.status).toBe(201)
    const other = await generateKeyPair('ES256')
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(created.body.clientId)
      .setSubject(created.body.clientId)
      .setAudience(`${t.url}/t/default/oauth2/token`)
      .setIssuedAt()
      .setExpirationTime('2m')
      .setJti(randomUUID())
      .sign(other.privateKey)
    const response = await postForm(`${t.url}/t/default/oauth2/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    })
    expect(response.status).toBe(401)
  })

  it('accepts an authorization code once only', async () => {
    const { verifier, challenge } = pkcePair()
    const code = await authorize(t.url, 'default', 'admin', ADMIN_PASSWORD, challenge)
    expect((await exchangeCode(t.url, 'default', code, verifier)).status).toBe(200)
    const again = await exchangeCode(t.url, 'default', code, verifier)
    expect(again.status).toBe(400)
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' })
  })

  it('refuses a code whose PKCE verifier does not match the challenge', async () => {
    const { challenge } = pkcePair()
    const code = await authorize(t.url, 'default', 'admin', ADMIN_PASSWORD, challenge)
    const response = await exchangeCode(t.url, 'default', code, pkcePair().verifier)
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' })
  })

  it('shows an error page instead of a sign-in form when PKCE S256 is missing', async () => {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'desklink-cli',
      redirect_uri: 'http://127.0.0.1:5000/callback',
      state: 'abcdefgh',
    })
    const response = await fetch(`${t.url}/t/default/oauth2/authorize?${query.toString()}`)
    expect(response.status).toBe(400)
    expect(await response.text()).toContain('PKCE')
  })

  it('refuses to redirect a sign-in to an address that is not loopback', async () => {
    const { challenge } = pkcePair()
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'desklink-cli',
      redirect_uri: 'https://attacker.example/callback',
      state: 'abcdefgh',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    })
    const response = await fetch(`${t.url}/t/default/oauth2/authorize?${query.toString()}`)
    expect(response.status).toBe(400)
  })

  it('answers a wrong password with the sign-in page again and no redirect', async () => {
    const { challenge } = pkcePair()
    await expect(
      authorize(t.url, 'default', 'admin', 'not-the-password-1', challenge),
    ).rejects.toThrow('401')
  })

  it('rotates refresh tokens, and reuse of a rotated one revokes the whole family', async () => {
    const first = await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)
    expect(first.refresh_token).toBeTruthy()
    const refresh = (token: string) =>
      postForm(`${t.url}/t/default/oauth2/token`, {
        grant_type: 'refresh_token',
        refresh_token: token,
        client_id: 'desklink-cli',
      })

    const secondResponse = await refresh(first.refresh_token!)
    expect(secondResponse.status).toBe(200)
    const second = (await secondResponse.json()) as Tokens
    expect(second.refresh_token).toBeTruthy()
    expect(second.refresh_token).not.toBe(first.refresh_token)

    const reuse = await refresh(first.refresh_token!)
    expect(reuse.status).toBe(400)
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' })

    // The legitimate newest token of the family is revoked too.
    const afterReuse = await refresh(second.refresh_token!)
    expect(afterReuse.status).toBe(400)
    expect(t.logs.some((line) => line.includes('refresh token reused'))).toBe(true)
  })

  it('keeps other token families working when one family is revoked', async () => {
    const a = await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)
    const b = await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)
    const refresh = (token: string) =>
      postForm(`${t.url}/t/default/oauth2/token`, {
        grant_type: 'refresh_token',
        refresh_token: token,
        client_id: 'desklink-cli',
      })
    const rotated = await refresh(a.refresh_token!)
    expect(rotated.status).toBe(200)
    const rotatedTokens = (await rotated.json()) as Tokens
    expect((await refresh(a.refresh_token!)).status).toBe(400) // reuse: revokes family a
    expect((await refresh(rotatedTokens.refresh_token!)).status).toBe(400)
    expect((await refresh(b.refresh_token!)).status).toBe(200)
  })

  it('refuses a token of the API to a deactivated user at once', async () => {
    const created = await api(t.url, adminToken, 'POST', '/users', {
      username: 'leaver',
      password: 'leaver-password-1',
    })
    const tokens = await signIn(t.url, 'default', 'leaver', 'leaver-password-1')
    expect((await api(t.url, tokens.access_token, 'GET', '/me')).status).toBe(200)
    await api(t.url, adminToken, 'PATCH', `/users/${created.body.id}`, { status: 'deactivated' })
    const after = await api(t.url, tokens.access_token, 'GET', '/me')
    expect(after.status).toBe(403)
    expect(after.body.error.code).toBe('PrincipalDeactivated')
  })

  it('refuses the reserved desktopflows.execute scope for now', async () => {
    const { challenge } = pkcePair()
    const response = await postForm(`${t.url}/t/default/oauth2/authorize`, {
      response_type: 'code',
      client_id: 'desklink-cli',
      redirect_uri: 'http://127.0.0.1:45678/callback',
      scope: 'desktopflows.execute',
      state: 'abcdefgh',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      username: 'admin',
      password: ADMIN_PASSWORD,
    })
    expect(response.status).toBe(302)
    expect(new URL(response.headers.get('location')!).searchParams.get('error')).toBe(
      'invalid_scope',
    )
  })
})

describe('an access token used request after request', () => {
  let t: TestServer

  beforeAll(async () => {
    t = await startTestServer('sqlite', { DESKLINK_ACCESS_TOKEN_TTL_SECONDS: '2' })
  })
  afterAll(async () => t.close())

  it('is refused once it expires, though its signature was checked before', async () => {
    const token = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    for (let i = 0; i < 3; i++) expect((await api(t.url, token, 'GET', '/me')).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const expired = await api(t.url, token, 'GET', '/me')
    expect(expired.status).toBe(401)
    expect(expired.body.error.code).toBe('InvalidToken')
  })
})
