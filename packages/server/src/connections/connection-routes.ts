/**
 * The connections API.
 *
 * @module
 */
import {
  Connection,
  ConnectionShare,
  ConnectionTargetKey,
  ConnectionUsage,
  CreateConnectionRequest,
  CreateConnectionShareRequest,
  Id,
  ListOf,
  SetRunOwnerRequest,
  UpdateConnectionRequest,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { CredentialService } from '../credentials/index.ts'
import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import type { ShareRecord } from '../sharing/share-store.ts'
import type { ConnectionRow, ConnectionService } from './connection-service.ts'

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })
const tags = ['Connections']
const ConnectionParams = z.object({ connectionId: Id })

export const connectionRouteDefinitions = {
  list: route({
    method: 'get',
    path: '/environments/{environmentId}/connections',
    tags,
    summary: 'List your connections (all, for environment administrators)',
    request: { params: z.object({ environmentId: Id }) },
    responses: responses(200, ListOf(Connection)),
  }),
  create: route({
    method: 'post',
    path: '/environments/{environmentId}/connections',
    tags,
    summary:
      'Create a connection to a machine or group; it is tested on a machine of the target (201 with its status)',
    request: { params: z.object({ environmentId: Id }), body: jsonBody(CreateConnectionRequest) },
    responses: responses(201, Connection),
  }),
  get: route({
    method: 'get',
    path: '/connections/{connectionId}',
    tags,
    summary: 'Get a connection and its status',
    request: { params: ConnectionParams },
    responses: responses(200, Connection),
  }),
  test: route({
    method: 'post',
    path: '/connections/{connectionId}/test',
    tags,
    summary: 'Test a connection again on a machine of its target',
    request: { params: ConnectionParams },
    responses: responses(200, Connection),
  }),
  update: route({
    method: 'patch',
    path: '/connections/{connectionId}',
    tags,
    summary: 'Rename a connection or change its username and password (tested again)',
    request: { params: ConnectionParams, body: jsonBody(UpdateConnectionRequest) },
    responses: responses(200, Connection),
  }),
  setRunOwner: route({
    method: 'put',
    path: '/connections/{connectionId}/run-owner',
    tags,
    summary:
      'Make a service principal the run owner (it must agree); it can change but never be removed',
    request: { params: ConnectionParams, body: jsonBody(SetRunOwnerRequest) },
    responses: responses(200, Connection),
  }),
  listShares: route({
    method: 'get',
    path: '/connections/{connectionId}/shares',
    tags,
    summary: 'List the service principals a connection is shared with',
    request: { params: ConnectionParams },
    responses: responses(200, ListOf(ConnectionShare)),
  }),
  share: route({
    method: 'post',
    path: '/connections/{connectionId}/shares',
    tags,
    summary:
      'Share a connection whose run owner is a service principal with a service principal: use or edit',
    request: { params: ConnectionParams, body: jsonBody(CreateConnectionShareRequest) },
    responses: responses(201, ConnectionShare),
  }),
  unshare: route({
    method: 'delete',
    path: '/connections/{connectionId}/shares/{shareId}',
    tags,
    summary: 'Stop sharing a connection',
    request: { params: z.object({ connectionId: Id, shareId: Id }) },
    responses: noContent,
  }),
  targetKey: route({
    method: 'get',
    path: '/connections/{connectionId}/target-key',
    tags,
    summary:
      'The public key of the target, to seal a new password to (callers who may update the connection)',
    request: { params: ConnectionParams },
    responses: responses(200, ConnectionTargetKey),
  }),
  inventory: route({
    method: 'get',
    path: '/connections/{connectionId}/inventory',
    tags,
    summary:
      'Which flows ran through the connection, on which machines, as which run owner, when last',
    request: { params: ConnectionParams },
    responses: responses(200, ListOf(ConnectionUsage)),
  }),
  delete: route({
    method: 'delete',
    path: '/connections/{connectionId}',
    tags,
    summary: 'Delete a connection',
    request: { params: ConnectionParams },
    responses: noContent,
  }),
} as const

export const toApiConnection = (row: ConnectionRow, access: Connection['access']): Connection => ({
  id: row.id,
  environmentId: row.environment_id,
  name: row.name,
  targetGroupId: row.target_group_id,
  type: row.type,
  username: row.username,
  credentialId: row.credential_id,
  ownerType: row.owner_type,
  ownerId: row.owner_id,
  runOwnerType: row.run_owner_type,
  runOwnerId: row.run_owner_id,
  runOwnerExplicit: row.run_owner_explicit === 1,
  access,
  status: row.status,
  error: row.status_error === null ? null : (JSON.parse(row.status_error) as Connection['error']),
  osAccount: row.os_account,
  lastTestedAt: row.last_tested_at,
  lastUsedAt: row.last_used_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

const toApiShare = (share: ShareRecord) => ({
  id: share.id,
  principalType: 'servicePrincipal' as const,
  principalId: share.principal_id,
  access: share.access as 'use' | 'edit',
  createdAt: share.created_at,
})

export function registerConnectionRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { connections: ConnectionService; credentials: CredentialService },
): void {
  const r = connectionRouteDefinitions
  const { connections } = deps
  const out = (v: { row: ConnectionRow; access: Connection['access'] }) =>
    toApiConnection(v.row, v.access)
  app.openapi(r.list, async (c) =>
    c.json(
      {
        items: (await connections.list(c.get('principal'), c.req.valid('param').environmentId)).map(
          out,
        ),
      },
      200,
    ),
  )
  app.openapi(r.create, async (c) => {
    const principal = c.get('principal')
    const { environmentId } = c.req.valid('param')
    const body = c.req.valid('json')
    if (!('newCredential' in body)) {
      return c.json(
        toApiConnection(await connections.create(principal, environmentId, body), 'owner'),
        201,
      )
    }
    // "New credential" in the same call: made first, and removed again if the connection is not kept.
    const credential = await deps.credentials.create(principal, environmentId, body.newCredential)
    try {
      const created = await connections.create(principal, environmentId, {
        name: body.name,
        target: body.target,
        credentialId: credential.row.id,
      })
      return c.json(toApiConnection(created, 'owner'), 201)
    } catch (error) {
      await deps.credentials.delete(principal, credential.row.id)
      throw error
    }
  })
  app.openapi(r.inventory, async (c) =>
    c.json(
      {
        items: await connections.inventory(c.get('principal'), c.req.valid('param').connectionId),
      },
      200,
    ),
  )
  app.openapi(r.targetKey, async (c) =>
    c.json(await connections.targetKey(c.get('principal'), c.req.valid('param').connectionId), 200),
  )
  app.openapi(r.get, async (c) =>
    c.json(out(await connections.get(c.get('principal'), c.req.valid('param').connectionId)), 200),
  )
  app.openapi(r.update, async (c) =>
    c.json(
      out(
        await connections.update(
          c.get('principal'),
          c.req.valid('param').connectionId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.setRunOwner, async (c) =>
    c.json(
      out(
        await connections.setRunOwner(
          c.get('principal'),
          c.req.valid('param').connectionId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.test, async (c) => {
    const id = c.req.valid('param').connectionId
    await connections.test(c.get('principal'), id)
    return c.json(out(await connections.get(c.get('principal'), id)), 200)
  })
  app.openapi(r.listShares, async (c) =>
    c.json(
      {
        items: (
          await connections.listShares(c.get('principal'), c.req.valid('param').connectionId)
        ).map(toApiShare),
      },
      200,
    ),
  )
  app.openapi(r.share, async (c) =>
    c.json(
      toApiShare(
        await connections.share(
          c.get('principal'),
          c.req.valid('param').connectionId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.unshare, async (c) => {
    const { connectionId, shareId } = c.req.valid('param')
    await connections.unshare(c.get('principal'), connectionId, shareId)
    return c.body(null, 204)
  })
  app.openapi(r.delete, async (c) => {
    await connections.delete(c.get('principal'), c.req.valid('param').connectionId)
    return c.body(null, 204)
  })
}
