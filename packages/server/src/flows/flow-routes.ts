/**
 * The desktop flows API: push a package, list, show, delete, and share with co-owners and users.
 *
 * @module
 */
import {
  CreateFlowShareRequest,
  DesktopFlow,
  type FlowManifest,
  Id,
  ListOf,
  PushedFlow,
  PushFlowRequest,
  Share,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import { toApiShare } from '../machines/machine-mappers.ts'
import type { FlowService, FlowView } from './flow-service.ts'

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })
const tags = ['Desktop flows']
const FlowParams = z.object({ flowId: Id })

export const flowRouteDefinitions = {
  list: route({
    method: 'get',
    path: '/environments/{environmentId}/desktop-flows',
    tags,
    summary: 'List the desktop flows you can see',
    request: { params: z.object({ environmentId: Id }) },
    responses: responses(200, ListOf(DesktopFlow)),
  }),
  push: route({
    method: 'post',
    path: '/environments/{environmentId}/desktop-flows',
    tags,
    summary:
      'Push a desktop flow package: a new flow (201), or a new version of the flow of that name (200); the same content again changes nothing (200, `pushed: unchanged`)',
    request: { params: z.object({ environmentId: Id }), body: jsonBody(PushFlowRequest) },
    responses: { ...responses(201, PushedFlow), ...responses(200, PushedFlow) },
  }),
  get: route({
    method: 'get',
    path: '/desktop-flows/{flowId}',
    tags,
    summary: 'Get a desktop flow and its current version',
    request: { params: FlowParams },
    responses: responses(200, DesktopFlow),
  }),
  delete: route({
    method: 'delete',
    path: '/desktop-flows/{flowId}',
    tags,
    summary: 'Delete a desktop flow and all its versions',
    request: { params: FlowParams },
    responses: noContent,
  }),
  listShares: route({
    method: 'get',
    path: '/desktop-flows/{flowId}/shares',
    tags,
    summary: 'List who the flow is shared with',
    request: { params: FlowParams },
    responses: responses(200, ListOf(Share)),
  }),
  share: route({
    method: 'post',
    path: '/desktop-flows/{flowId}/shares',
    tags,
    summary: 'Share a flow with a co-owner (edit, share, delete) or a user (run)',
    request: { params: FlowParams, body: jsonBody(CreateFlowShareRequest) },
    responses: responses(201, Share),
  }),
  unshare: route({
    method: 'delete',
    path: '/desktop-flows/{flowId}/shares/{shareId}',
    tags,
    summary: 'Stop sharing a flow',
    request: { params: z.object({ flowId: Id, shareId: Id }) },
    responses: noContent,
  }),
} as const

export const toApiFlow = ({ flow, version, access }: FlowView): DesktopFlow => {
  const manifest = JSON.parse(version.manifest) as FlowManifest
  return {
    id: flow.id,
    environmentId: flow.environment_id,
    name: flow.name,
    description: manifest.description,
    runtime: manifest.runtime,
    version: version.version,
    contentHash: version.content_hash,
    sizeBytes: version.size_bytes,
    manifest,
    ownerType: flow.owner_type,
    ownerId: flow.owner_id,
    access,
    createdAt: flow.created_at,
    updatedAt: flow.updated_at,
  }
}

export function registerFlowRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: {
    flows: FlowService
    principalExists: (tenantId: string, type: string, id: string) => Promise<boolean>
  },
): void {
  const r = flowRouteDefinitions
  const { flows } = deps
  app.openapi(r.list, async (c) =>
    c.json(
      {
        items: (await flows.list(c.get('principal'), c.req.valid('param').environmentId)).map(
          toApiFlow,
        ),
      },
      200,
    ),
  )
  app.openapi(r.push, async (c) => {
    const pushed = await flows.push(
      c.get('principal'),
      c.req.valid('param').environmentId,
      c.req.valid('json'),
    )
    const what = pushed.created ? 'created' : pushed.changed ? 'newVersion' : 'unchanged'
    return c.json({ ...toApiFlow(pushed), pushed: what }, pushed.created ? 201 : 200)
  })
  app.openapi(r.get, async (c) =>
    c.json(toApiFlow(await flows.view(c.get('principal'), c.req.valid('param').flowId)), 200),
  )
  app.openapi(r.delete, async (c) => {
    await flows.delete(c.get('principal'), c.req.valid('param').flowId)
    return c.body(null, 204)
  })
  app.openapi(r.listShares, async (c) =>
    c.json(
      {
        items: (await flows.listShares(c.get('principal'), c.req.valid('param').flowId)).map(
          toApiShare,
        ),
      },
      200,
    ),
  )
  app.openapi(r.share, async (c) => {
    const principal = c.get('principal')
    const share = await flows.share(
      principal,
      c.req.valid('param').flowId,
      c.req.valid('json'),
      (type, id) => deps.principalExists(principal.tenant.id, type, id),
    )
    return c.json(toApiShare(share), 201)
  })
  app.openapi(r.unshare, async (c) => {
    const { flowId, shareId } = c.req.valid('param')
    await flows.unshare(c.get('principal'), flowId, shareId)
    return c.body(null, 204)
  })
}
