/**
 * The secret stores API: `/environments/{environmentId}/secret-stores` and `/secret-stores/{id}`.
 *
 * @module
 */
import { CreateSecretStoreRequest, Id, ListOf, SecretStore } from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import type { SecretStoreRow, SecretStoreService } from './secret-store-service.ts'

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })

export const secretStoreRouteDefinitions = {
  list: route({
    method: 'get',
    path: '/environments/{environmentId}/secret-stores',
    tags: ['Credentials'],
    summary: 'List the secret stores of an environment',
    request: { params: z.object({ environmentId: Id }) },
    responses: responses(200, ListOf(SecretStore)),
  }),
  create: route({
    method: 'post',
    path: '/environments/{environmentId}/secret-stores',
    tags: ['Credentials'],
    summary:
      'Configure a secret store (HashiCorp Vault, Azure Key Vault, CyberArk CCP); its secrets are sealed at once',
    request: { params: z.object({ environmentId: Id }), body: jsonBody(CreateSecretStoreRequest) },
    responses: responses(201, SecretStore),
  }),
  get: route({
    method: 'get',
    path: '/secret-stores/{storeId}',
    tags: ['Credentials'],
    summary: 'Get a secret store (never its secrets)',
    request: { params: z.object({ storeId: Id }) },
    responses: responses(200, SecretStore),
  }),
  delete: route({
    method: 'delete',
    path: '/secret-stores/{storeId}',
    tags: ['Credentials'],
    summary: 'Delete a secret store',
    request: { params: z.object({ storeId: Id }) },
    responses: noContent,
  }),
} as const

const toApi = (row: SecretStoreRow): SecretStore => ({
  id: row.id,
  environmentId: row.environment_id,
  name: row.name,
  type: row.type,
  summary: JSON.parse(row.summary) as Record<string, string>,
  createdAt: row.created_at,
})

export function registerSecretStoreRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { stores: SecretStoreService },
): void {
  const r = secretStoreRouteDefinitions
  app.openapi(r.list, async (c) =>
    c.json(
      {
        items: (await deps.stores.list(c.get('principal'), c.req.valid('param').environmentId)).map(
          toApi,
        ),
      },
      200,
    ),
  )
  app.openapi(r.create, async (c) =>
    c.json(
      toApi(
        await deps.stores.create(
          c.get('principal'),
          c.req.valid('param').environmentId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.get, async (c) =>
    c.json(toApi(await deps.stores.get(c.get('principal'), c.req.valid('param').storeId)), 200),
  )
  app.openapi(r.delete, async (c) => {
    await deps.stores.delete(c.get('principal'), c.req.valid('param').storeId)
    return c.body(null, 204)
  })
}
