/**
 * The sharing matrix of machines and machine groups (co-owner / user, reference §2.3) as one
 * table: principals × actions, each answer checked. A principal needs a role in the
 * environment AND access to the resource; environment administrators need no share.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { registerTestMachine } from '../support/test-machine.ts'
import {
  ADMIN_PASSWORD,
  api,
  signIn,
  startTestServer,
  type TestServer,
} from '../support/test-server.ts'

type Row = 'owner' | 'coOwner' | 'user' | 'noShare' | 'noRole' | 'environmentAdmin'
type Action = 'view' | 'edit' | 'share' | 'delete'

const EXPECTED: Record<Row, Record<Action, number>> = {
  owner: { view: 200, edit: 200, share: 201, delete: 204 },
  coOwner: { view: 200, edit: 200, share: 201, delete: 204 },
  user: { view: 200, edit: 403, share: 403, delete: 403 },
  noShare: { view: 404, edit: 404, share: 404, delete: 404 },
  noRole: { view: 404, edit: 404, share: 404, delete: 404 },
  environmentAdmin: { view: 200, edit: 200, share: 201, delete: 204 },
}

describe('who may do what with machines and machine groups', () => {
  let t: TestServer
  let admin: string
  let environmentId: string
  const tokens = {} as Record<Row, string>
  const ids = {} as Record<Row | 'target', string>

  beforeAll(async () => {
    t = await startTestServer('sqlite')
    admin = (await signIn(t.url, 'default', 'admin', ADMIN_PASSWORD)).access_token
    environmentId = (await api(t.url, admin, 'GET', '/me')).body.roles[0].environmentId
    const roles: Record<Row, string | undefined> = {
      owner: 'MachineOwner',
      coOwner: 'MachineUser',
      user: 'MachineUser',
      noShare: 'MachineOwner',
      noRole: undefined,
      environmentAdmin: 'EnvironmentAdmin',
    }
    for (const [row, role] of Object.entries(roles) as [Row, string | undefined][]) {
      const password = `${row}-password-123`
      const user = await api(t.url, admin, 'POST', '/users', {
        username: row.toLowerCase(),
        password,
      })
      ids[row] = user.body.id
      if (role)
        await api(t.url, admin, 'POST', `/environments/${environmentId}/role-assignments`, {
          principalType: 'user',
          principalId: user.body.id,
          role,
        })
      tokens[row] = (await signIn(t.url, 'default', row.toLowerCase(), password)).access_token
    }
    ids.target = (
      await api(t.url, admin, 'POST', '/users', {
        username: 'share-target',
        password: 'share-target-123',
      })
    ).body.id
  })
  afterAll(async () => t.close())

  /** A fresh resource owned by `owner`, shared with coOwner, user and noRole. */
  async function freshResource(kind: 'machine' | 'group'): Promise<string> {
    const path =
      kind === 'group'
        ? `/machine-groups/${(await api(t.url, tokens.owner, 'POST', '/machine-groups', { environmentId, name: 'matrix' })).body.id}`
        : `/machines/${(await registerTestMachine(t.url, tokens.owner, environmentId, 'matrix')).machineId}`
    for (const [row, access] of [
      ['coOwner', 'coOwner'],
      ['user', 'user'],
      ['noRole', 'coOwner'],
    ] as const) {
      const shared = await api(t.url, tokens.owner, 'POST', `${path}/shares`, {
        principalType: 'user',
        principalId: ids[row],
        access,
      })
      expect(shared.status).toBe(201)
    }
    return path
  }

  for (const kind of ['machine', 'group'] as const) {
    for (const row of Object.keys(EXPECTED) as Row[]) {
      it(`${kind}: ${row} gets view ${EXPECTED[row].view}, edit ${EXPECTED[row].edit}, share ${EXPECTED[row].share}, delete ${EXPECTED[row].delete}`, async () => {
        const path = await freshResource(kind)
        const token = tokens[row]
        const answers: Record<Action, number> = {
          view: (await api(t.url, token, 'GET', path)).status,
          edit: (await api(t.url, token, 'PATCH', path, { name: 'edited' })).status,
          share: (
            await api(t.url, token, 'POST', `${path}/shares`, {
              principalType: 'user',
              principalId: ids.target,
              access: 'user',
            })
          ).status,
          delete: (await api(t.url, token, 'DELETE', path)).status,
        }
        expect(answers).toEqual(EXPECTED[row])
        const stillThere = (await api(t.url, admin, 'GET', path)).status
        expect(stillThere).toBe(EXPECTED[row].delete === 204 ? 404 : 200)
      })
    }
  }

  it('lets only machine creators make registration tokens and groups', async () => {
    for (const row of ['coOwner', 'user', 'noRole'] as const) {
      expect(
        (
          await api(
            t.url,
            tokens[row],
            'POST',
            `/environments/${environmentId}/registration-tokens`,
            {},
          )
        ).status,
      ).toBe(403)
      expect(
        (await api(t.url, tokens[row], 'POST', '/machine-groups', { environmentId, name: 'x' }))
          .status,
      ).toBe(403)
    }
    expect(
      (
        await api(
          t.url,
          tokens.owner,
          'POST',
          `/environments/${environmentId}/registration-tokens`,
          {},
        )
      ).status,
    ).toBe(201)
  })
})
