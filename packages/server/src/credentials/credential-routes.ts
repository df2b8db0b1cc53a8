/**
 * The credentials API, and the CyberArk applications of machines and groups.
 *
 * @module
 */
import {
  CreateCredentialRequest,
  CreateCredentialShareRequest,
  Credential,
  CredentialDependencies,
  CredentialShare,
  CyberArkApplication,
  Id,
  ListOf,
  SetCyberArkApplicationRequest,
  UpdateCredentialRequest,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import type { ShareRecord } from '../sharing/share-store.ts'
import { type CredentialService, type CredentialView, publicSecret } from './credential-service.ts'
import type {
  CyberArkApplicationRow,
  CyberArkApplicationService,
} from './cyberark-application-service.ts'

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })
const CredentialParams = z.object({ credentialId: Id })
const tags = ['Credentials']

export const credentialRouteDefinitions = {
  list: route({
    method: 'get',
    path: '/environments/{environmentId}/credentials',
    tags,
    summary: 'List the credentials you can use',
    request: { params: z.object({ environmentId: Id }) },
    responses: responses(200, ListOf(Credential)),
  }),
  create: route({
    method: 'post',
    path: '/environments/{environmentId}/credentials',
    tags,
    summary: 'Create a credential; the secret is checked readable now and never returned',
    request: { params: z.object({ environmentId: Id }), body: jsonBody(CreateCredentialRequest) },
    responses: responses(201, Credential),
  }),
  get: route({
    method: 'get',
    path: '/credentials/{credentialId}',
    tags,
    summary: 'Get a credential (where its secret lives, never the secret)',
    request: { params: CredentialParams },
    responses: responses(200, Credential),
  }),
  update: route({
    method: 'patch',
    path: '/credentials/{credentialId}',
    tags,
    summary: 'Rename or describe a credential; username and secret cannot change',
    request: { params: CredentialParams, body: jsonBody(UpdateCredentialRequest) },
    responses: responses(200, Credential),
  }),
  delete: route({
    method: 'delete',
    path: '/credentials/{credentialId}',
    tags,
    summary:
      'Delete a credential; refused while connections use it unless force=true (they then fail)',
    request: {
      params: CredentialParams,
      query: z.object({ force: z.enum(['true', 'false']).optional() }),
    },
    responses: noContent,
  }),
  test: route({
    method: 'post',
    path: '/credentials/{credentialId}/test',
    tags,
    summary: 'Check that the secret can be read now (returns no secret)',
    request: { params: CredentialParams },
    responses: responses(200, z.object({ readable: z.literal(true), source: z.string() })),
  }),
  dependencies: route({
    method: 'get',
    path: '/credentials/{credentialId}/dependencies',
    tags,
    summary: 'The connections that use a credential',
    request: { params: CredentialParams },
    responses: responses(200, CredentialDependencies),
  }),
  listShares: route({
    method: 'get',
    path: '/credentials/{credentialId}/shares',
    tags,
    summary: 'List who a credential is shared with',
    request: { params: CredentialParams },
    responses: responses(200, ListOf(CredentialShare)),
  }),
  share: route({
    method: 'post',
    path: '/credentials/{credentialId}/shares',
    tags,
    summary: 'Share a credential: coOwner, user or userCanShare',
    request: { params: CredentialParams, body: jsonBody(CreateCredentialShareRequest) },
    responses: responses(201, CredentialShare),
  }),
  unshare: route({
    method: 'delete',
    path: '/credentials/{credentialId}/shares/{shareId}',
    tags,
    summary: 'Stop sharing a credential',
    request: { params: z.object({ credentialId: Id, shareId: Id }) },
    responses: noContent,
  }),
  setGroupCyberArk: route({
    method: 'put',
    path: '/machine-groups/{groupId}/cyberark-application',
    tags,
    summary: 'Configure the CyberArk application of a group (certificate sealed to the group key)',
    request: { params: z.object({ groupId: Id }), body: jsonBody(SetCyberArkApplicationRequest) },
    responses: responses(200, CyberArkApplication),
  }),
  getGroupCyberArk: route({
    method: 'get',
    path: '/machine-groups/{groupId}/cyberark-application',
    tags,
    summary: 'Show the CyberArk application of a group',
    request: { params: z.object({ groupId: Id }) },
    responses: responses(200, CyberArkApplication),
  }),
  deleteGroupCyberArk: route({
    method: 'delete',
    path: '/machine-groups/{groupId}/cyberark-application',
    tags,
    summary: 'Remove the CyberArk application of a group',
    request: { params: z.object({ groupId: Id }) },
    responses: noContent,
  }),
  setMachineCyberArk: route({
    method: 'put',
    path: '/machines/{machineId}/cyberark-application',
    tags,
    summary: 'Configure the CyberArk application of a machine',
    request: { params: z.object({ machineId: Id }), body: jsonBody(SetCyberArkApplicationRequest) },
    responses: responses(200, CyberArkApplication),
  }),
  getMachineCyberArk: route({
    method: 'get',
    path: '/machines/{machineId}/cyberark-application',
    tags,
    summary: 'Show the CyberArk application of a machine',
    request: { params: z.object({ machineId: Id }) },
    responses: responses(200, CyberArkApplication),
  }),
  deleteMachineCyberArk: route({
    method: 'delete',
    path: '/machines/{machineId}/cyberark-application',
    tags,
    summary: 'Remove the CyberArk application of a machine',
    request: { params: z.object({ machineId: Id }) },
    responses: noContent,
  }),
} as const

const toApi = (v: CredentialView): Credential => ({
  id: v.row.id,
  environmentId: v.row.environment_id,
  name: v.row.name,
  description: v.row.description,
  usage: v.row.usage,
  username:
    'value' in v.username
      ? { value: v.username.value }
      : { fromStore: { ...v.username.fromStore } },
  secret: publicSecret(v.secret),
  ownerType: v.row.owner_type,
  ownerId: v.row.owner_id,
  access: v.access,
  createdAt: v.row.created_at,
  updatedAt: v.row.updated_at,
})

const toApiShare = (s: ShareRecord) => ({
  // Credential shares only ever hold the credential access levels.
  id: s.id,
  principalType: s.principal_type,
  principalId: s.principal_id,
  access: s.access as 'coOwner' | 'user' | 'userCanShare',
  createdAt: s.created_at,
})
const toApiCyberArk = (r: CyberArkApplicationRow) => ({
  groupId: r.group_id,
  appId: r.app_id,
  description: r.description,
  certificateSubject: r.certificate_subject,
  createdAt: r.created_at,
})

export function registerCredentialRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { credentials: CredentialService; cyberArk: CyberArkApplicationService },
): void {
  const r = credentialRouteDefinitions
  const { credentials, cyberArk } = deps
  app.openapi(r.list, async (c) =>
    c.json(
      {
        items: (await credentials.list(c.get('principal'), c.req.valid('param').environmentId)).map(
          toApi,
        ),
      },
      200,
    ),
  )
  app.openapi(r.create, async (c) =>
    c.json(
      toApi(
        await credentials.create(
          c.get('principal'),
          c.req.valid('param').environmentId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.get, async (c) =>
    c.json(
      toApi(await credentials.get(c.get('principal'), c.req.valid('param').credentialId)),
      200,
    ),
  )
  app.openapi(r.update, async (c) =>
    c.json(
      toApi(
        await credentials.update(
          c.get('principal'),
          c.req.valid('param').credentialId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.delete, async (c) => {
    await credentials.delete(c.get('principal'), c.req.valid('param').credentialId, {
      force: c.req.valid('query').force === 'true',
    })
    return c.body(null, 204)
  })
  app.openapi(r.test, async (c) =>
    c.json(await credentials.test(c.get('principal'), c.req.valid('param').credentialId), 200),
  )
  app.openapi(r.dependencies, async (c) =>
    c.json(
      await credentials.dependencies(c.get('principal'), c.req.valid('param').credentialId),
      200,
    ),
  )
  app.openapi(r.listShares, async (c) =>
    c.json(
      {
        items: (
          await credentials.listShares(c.get('principal'), c.req.valid('param').credentialId)
        ).map(toApiShare),
      },
      200,
    ),
  )
  app.openapi(r.share, async (c) =>
    c.json(
      toApiShare(
        await credentials.share(
          c.get('principal'),
          c.req.valid('param').credentialId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.unshare, async (c) => {
    const { credentialId, shareId } = c.req.valid('param')
    await credentials.unshare(c.get('principal'), credentialId, shareId)
    return c.body(null, 204)
  })
  app.openapi(r.setGroupCyberArk, async (c) =>
    c.json(
      toApiCyberArk(
        await cyberArk.set(
          c.get('principal'),
          'group',
          c.req.valid('param').groupId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.getGroupCyberArk, async (c) =>
    c.json(
      toApiCyberArk(await cyberArk.get(c.get('principal'), 'group', c.req.valid('param').groupId)),
      200,
    ),
  )
  app.openapi(r.deleteGroupCyberArk, async (c) => {
    await cyberArk.delete(c.get('principal'), 'group', c.req.valid('param').groupId)
    return c.body(null, 204)
  })
  app.openapi(r.setMachineCyberArk, async (c) =>
    c.json(
      toApiCyberArk(
        await cyberArk.set(
          c.get('principal'),
          'machine',
          c.req.valid('param').machineId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.getMachineCyberArk, async (c) =>
    c.json(
      toApiCyberArk(
        await cyberArk.get(c.get('principal'), 'machine', c.req.valid('param').machineId),
      ),
      200,
    ),
  )
  app.openapi(r.deleteMachineCyberArk, async (c) => {
    await cyberArk.delete(c.get('principal'), 'machine', c.req.valid('param').machineId)
    return c.body(null, 204)
  })
}
