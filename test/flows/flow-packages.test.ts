/**
 * Desktop flow packages through the API of a real server, on SQLite and PostgreSQL: versions
 * addressed by content, who may push a new version (owner, co-owner) and who may only run it
 * (user), the 16 MB limit, paths and manifest size, pushes of one name at once, and deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BACKENDS } from '../support/backends.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

const file = (path: string, text: string) => ({
  path,
  contentBase64: Buffer.from(text).toString('base64'),
})
const pkg = (name: string, files: ReturnType<typeof file>[]) => ({
  manifest: { name, runtime: 'shell', entry: 'main.sh' },
  files,
})

describe.each(BACKENDS)('desktop flow packages on %s', (backend) => {
  let t: TestServer
  let admin: string
  let environmentId: string

  async function maker(name: string): Promise<{ id: string; token: string }> {
    const created = await api(t.url, admin, 'POST', '/users', {
      username: name,
      password: `${name}-password-1`,
    })
    await api(t.url, admin, 'POST', `/environments/${environmentId}/role-assignments`, {
      principalType: 'user',
      principalId: created.body.id,
      role: 'EnvironmentMaker',
    })
    const { access_token } = await signIn(t.url, 'default', name, `${name}-password-1`)
    return { id: created.body.id, token: access_token }
  }
  const push = (token: string, body: unknown) =>
    api(t.url, token, 'POST', `/environments/${environmentId}/desktop-flows`, body)

  beforeAll(async () => {
    t = await startTestServer(backend)
    admin = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, admin, 'GET', '/me')).body.roles[0].environmentId
  })
  afterAll(async () => {
    await t?.close()
  })

  it('versions a package by its content: the same content is the same version, a change the next', async () => {
    const files = [file('main.sh', 'echo one'), file('lib/util.sh', 'true')]
    const first = await push(admin, pkg('versioned', files))
    expect(first.status, first.text).toBe(201)
    expect(first.body).toMatchObject({ name: 'versioned', version: 1, pushed: 'created' })
    expect(first.body.contentHash).toMatch(/^[0-9a-f]{64}$/)

    // The same files in another order are the same content.
    const again = await push(admin, pkg('versioned', [...files].reverse()))
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({
      version: 1,
      contentHash: first.body.contentHash,
      pushed: 'unchanged',
    })

    const changed = await push(admin, pkg('versioned', [file('main.sh', 'echo two'), files[1]]))
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({ id: first.body.id, version: 2, pushed: 'newVersion' })
    expect(changed.body.contentHash).not.toBe(first.body.contentHash)

    expect((await api(t.url, admin, 'GET', `/desktop-flows/${first.body.id}`)).body).toMatchObject({
      version: 2,
      contentHash: changed.body.contentHash,
    })
    const listed = (await api(t.url, admin, 'GET', `/environments/${environmentId}/desktop-flows`))
      .body.items as { name: string; version: number }[]
    expect(listed.filter((f) => f.name === 'versioned')).toEqual([
      expect.objectContaining({ version: 2 }),
    ])
  })

  it('lets the owner and co-owners push new versions; a user of the flow may only see and run it', async () => {
    const owner = await maker('flow-owner')
    const other = await maker('flow-other')
    const flow = (await push(owner.token, pkg('shared', [file('main.sh', 'echo 1')]))).body
    const fromOther = (text: string) => push(other.token, pkg('shared', [file('main.sh', text)]))

    expect((await fromOther('echo 2')).body.error.code).toBe('FlowNameInUse')
    const share = (access: 'user' | 'coOwner') =>
      api(t.url, owner.token, 'POST', `/desktop-flows/${flow.id}/shares`, {
        principalType: 'user',
        principalId: other.id,
        access,
      })
    const asUser = await share('user')
    expect(asUser.status, asUser.text).toBe(201)
    expect((await api(t.url, other.token, 'GET', `/desktop-flows/${flow.id}`)).body).toMatchObject({
      access: 'user',
      version: 1,
    })
    const refused = await fromOther('echo 2')
    expect(refused.status).toBe(409)
    expect(refused.body.error.code).toBe('FlowNameInUse')

    await api(t.url, owner.token, 'DELETE', `/desktop-flows/${flow.id}/shares/${asUser.body.id}`)
    expect((await share('coOwner')).status).toBe(201)
    const pushed = await fromOther('echo 2')
    expect(pushed.status, pushed.text).toBe(200)
    expect(pushed.body).toMatchObject({ id: flow.id, version: 2, access: 'coOwner' })
  })

  it('refuses a package of more than 16 MB with FlowPackageTooLarge, and stores nothing', async () => {
    const big = {
      path: 'data.bin',
      contentBase64: Buffer.alloc(16 * 1024 * 1024 + 1, 7).toString('base64'),
    }
    const refused = await push(admin, pkg('too-large', [file('main.sh', 'true'), big]))
    expect(refused.status).toBe(413)
    expect(refused.body.error.code).toBe('FlowPackageTooLarge')
    const listed = (await api(t.url, admin, 'GET', `/environments/${environmentId}/desktop-flows`))
      .body.items as { name: string }[]
    expect(listed.map((f) => f.name)).not.toContain('too-large')
  })

  it('refuses a path with a control character, and a manifest of more than 256 KiB', async () => {
    const nul = await push(admin, pkg('nul-path', [file('main.sh', 'true'), file('a\u0000b', 'x')]))
    expect(nul.status, nul.text).toBe(400)
    expect(nul.body.error.code).toBe('InvalidRequestBody')
    // The machine writes the inputs file itself: a package cannot hold one.
    const reserved = await push(
      admin,
      pkg('reserved-path', [file('main.sh', 'true'), file('.desklink-inputs.json', '{}')]),
    )
    expect(reserved.status, reserved.text).toBe(400)
    const heavy = await push(admin, {
      manifest: {
        name: 'heavy-manifest',
        runtime: 'shell',
        entry: 'main.sh',
        inputs: [{ name: 'blob', default: 'x'.repeat(256 * 1024) }],
      },
      files: [file('main.sh', 'true')],
    })
    expect(heavy.status, heavy.text.slice(0, 300)).toBe(400)
    expect(heavy.body.error.code).toBe('InvalidRequestBody')
    const listed = (await api(t.url, admin, 'GET', `/environments/${environmentId}/desktop-flows`))
      .body.items as { name: string }[]
    expect(listed.map((f) => f.name)).not.toContain('nul-path')
    expect(listed.map((f) => f.name)).not.toContain('heavy-manifest')
  })

  it('keeps pushes of one new name at once as one flow, each change its own version', async () => {
    const pushes = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        push(admin, pkg('raced', [file('main.sh', `echo ${i}`)])),
      ),
    )
    for (const answer of pushes) expect([200, 201], answer.text).toContain(answer.status)
    expect(pushes.filter((p) => p.status === 201)).toHaveLength(1)
    expect(new Set(pushes.map((p) => p.body.id)).size).toBe(1)
    expect(pushes.map((p) => p.body.version as number).sort()).toEqual([1, 2, 3, 4, 5, 6])
    const listed = (await api(t.url, admin, 'GET', `/environments/${environmentId}/desktop-flows`))
      .body.items as { name: string; version: number }[]
    expect(listed.filter((f) => f.name === 'raced')).toEqual([
      expect.objectContaining({ version: 6 }),
    ])
  })

  it('deletes a flow: it is gone from reads and lists, and its name can start again', async () => {
    const flow = (await push(admin, pkg('deleted', [file('main.sh', 'true')]))).body
    expect((await api(t.url, admin, 'DELETE', `/desktop-flows/${flow.id}`)).status).toBe(204)
    const gone = await api(t.url, admin, 'GET', `/desktop-flows/${flow.id}`)
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe('ResourceNotFound')
    const listed = (await api(t.url, admin, 'GET', `/environments/${environmentId}/desktop-flows`))
      .body.items as { name: string }[]
    expect(listed.map((f) => f.name)).not.toContain('deleted')
    const anew = await push(admin, pkg('deleted', [file('main.sh', 'true')]))
    expect(anew.status).toBe(201)
    expect(anew.body).toMatchObject({ version: 1 })
    expect(anew.body.id).not.toBe(flow.id)
  })
})
