/**
 * Canary secrets: passwords, client secrets, authorization codes, access and refresh tokens
 * planted by this test must appear nowhere in plaintext: not in the server's logs, not in any
 * error body, not in the database (files or rows), not in the data directory.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BACKENDS, dumpPostgres } from '../support/backends.ts'
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

const USER_PASSWORD = 'canary-user-password-7f3a91'
const NEW_PASSWORD = 'canary-new-password-c2d8e4'
const WRONG_PASSWORD = 'canary-wrong-password-55b0aa'

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

describe.each(BACKENDS)('canary secrets on %s', (backend) => {
  let t: TestServer
  const canaries = new Set<string>([ADMIN_PASSWORD, USER_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD])
  const responseBodies: string[] = []

  async function record(response: Response): Promise<string> {
    const text = await response.text()
    responseBodies.push(text)
    return text
  }

  beforeAll(async () => {
    t = await startTestServer(backend)
    const admin = await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)
    canaries.add(admin.access_token).add(admin.refresh_token!)

    // A user created with a password, signing in, changing it, failing to sign in.
    const user = await api(t.url, admin.access_token, 'POST', '/users', {
      username: 'canary',
      password: USER_PASSWORD,
    })
    const userTokens = await signIn(t.url, 'default', 'canary', USER_PASSWORD)
    canaries.add(userTokens.access_token).add(userTokens.refresh_token!)
    await api(t.url, admin.access_token, 'PATCH', `/users/${user.body.id}`, {
      password: NEW_PASSWORD,
    })
    const { verifier, challenge } = pkcePair()
    await expect(authorize(t.url, 'default', 'canary', WRONG_PASSWORD, challenge)).rejects.toThrow()
    const code = await authorize(t.url, 'default', 'canary', NEW_PASSWORD, challenge)
    canaries.add(code)
    const exchanged = (await (
      await exchangeCode(t.url, 'default', code, verifier)
    ).json()) as Tokens
    canaries.add(exchanged.access_token).add(exchanged.refresh_token!)
    // Reusing the code and the rotated refresh token: error bodies must not echo them.
    await record(await exchangeCode(t.url, 'default', code, verifier))
    const rotated = await postForm(`${t.url}/t/default/oauth2/token`, {
      grant_type: 'refresh_token',
      refresh_token: exchanged.refresh_token!,
      client_id: 'desklink-cli',
    })
    const rotatedTokens = JSON.parse(await record(rotated)) as Tokens
    canaries.add(rotatedTokens.access_token).add(rotatedTokens.refresh_token!)
    await record(
      await postForm(`${t.url}/t/default/oauth2/token`, {
        grant_type: 'refresh_token',
        refresh_token: exchanged.refresh_token!,
        client_id: 'desklink-cli',
      }),
    )

    // A service principal with a secret, a second secret, and a wrong secret.
    const sp = await api(t.url, admin.access_token, 'POST', '/service-principals', {
      name: 'canary-bot',
    })
    canaries.add(sp.body.secret.clientSecret)
    responseBodies.push(
      (await api(t.url, admin.access_token, 'GET', `/service-principals/${sp.body.id}/credentials`))
        .text,
    )
    const second = await api(
      t.url,
      admin.access_token,
      'POST',
      `/service-principals/${sp.body.id}/secrets`,
      { expiresInDays: 30 },
    )
    canaries.add(second.body.clientSecret)
    const spToken = (await (
      await clientCredentials(t.url, 'default', sp.body.clientId, second.body.clientSecret)
    ).json()) as Tokens
    canaries.add(spToken.access_token)
    await record(
      await clientCredentials(
        t.url,
        'default',
        sp.body.clientId,
        `${sp.body.secret.clientSecret}x`,
      ),
    )

    // Bad requests that carry secrets: the answers must not echo them.
    responseBodies.push((await api(t.url, `${admin.access_token}x`, 'GET', '/me')).text)
    responseBodies.push(
      (
        await api(t.url, admin.access_token, 'POST', '/users', {
          username: 'x y',
          password: USER_PASSWORD,
          extra: NEW_PASSWORD,
        })
      ).text,
    )
    responseBodies.push(
      (
        await api(t.url, admin.access_token, 'PATCH', `/users/${user.body.id}`, {
          status: NEW_PASSWORD,
        })
      ).text,
    )
    responseBodies.push(
      (await api(t.url, admin.access_token, 'POST', '/service-principals', { name: 'canary-bot' }))
        .text,
    )
    await api(
      t.url,
      admin.access_token,
      'DELETE',
      `/service-principals/${sp.body.id}/credentials/${second.body.id}`,
    )
  })
  afterAll(async () => t.close())

  const secretsIn = (text: string) => [...canaries].filter((canary) => text.includes(canary))

  it('planted the secrets it looks for', () => {
    expect(canaries.size).toBeGreaterThanOrEqual(14)
  })

  it('writes none of them to the logs', () => {
    expect(t.logs.length).toBeGreaterThan(20)
    expect(secretsIn(t.logs.join('\n'))).toEqual([])
  })

  it('echoes none of them in error bodies', () => {
    const errors = responseBodies.filter((body) => body.includes('"error"'))
    expect(errors.length).toBeGreaterThanOrEqual(7)
    expect(secretsIn(errors.join('\n'))).toEqual([])
  })

  it('stores none of them in the database', async () => {
    const stored =
      backend === 'sqlite'
        ? t.database.files
            .flatMap((file) => {
              try {
                return [readFileSync(file).toString('latin1')]
              } catch {
                return []
              }
            })
            .join('\n')
        : await dumpPostgres(t.database.url)
    expect(stored.length).toBeGreaterThan(1000)
    expect(secretsIn(stored)).toEqual([])
  })

  it('leaves none of them in the data directory', () => {
    const text = filesUnder(t.dataDir)
      .map((file) => readFileSync(file).toString('latin1'))
      .join('\n')
    expect(secretsIn(text)).toEqual([])
  })
})
