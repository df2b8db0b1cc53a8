/**
 * The connections API.
 *
 * @module
 */
import { Connection, CreateConnectionRequest, Id, ListOf } from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
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
  delete: route({
    method: 'delete',
    path: '/connections/{connectionId}',
    tags,
    summary: 'Delete a connection',
    request: { params: ConnectionParams },
    responses: noContent,
  }),
} as const

export const toApiConnection = (row: ConnectionRow): Connection => ({
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
  status: row.status,
  error: row.status_error === null ? null : (JSON.parse(row.status_error) as Connection['error']),
  osAccount: row.os_account,
  lastTestedAt: row.last_tested_at,
  lastUsedAt: row.last_used_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

export function registerConnectionRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { connections: ConnectionService },
): void {
  const r = connectionRouteDefinitions
  const { connections } = deps
  app.openapi(r.list, async (c) =>
    c.json(
      {
        items: (await connections.list(c.get('principal'), c.req.valid('param').environmentId)).map(
          toApiConnection,
        ),
      },
      200,
    ),
  )
  app.openapi(r.create, async (c) =>
    c.json(
      toApiConnection(
        await connections.create(
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
      toApiConnection(await connections.get(c.get('principal'), c.req.valid('param').connectionId)),
      200,
    ),
  )
  app.openapi(r.test, async (c) =>
    c.json(
      toApiConnection(
        await connections.test(c.get('principal'), c.req.valid('param').connectionId),
      ),
      200,
    ),
  )
  app.openapi(r.delete, async (c) => {
    await connections.delete(c.get('principal'), c.req.valid('param').connectionId)
    return c.body(null, 204)
  })
}
