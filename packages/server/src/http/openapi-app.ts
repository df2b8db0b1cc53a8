/**
 * Route definition helpers: every API route is declared with its schemas, so the same
 * definition validates requests and generates `/api/openapi.json`. Validation failures become
 * coded errors (`InvalidRequestBody`, `InvalidQueryParameter`) listing each issue's path.
 *
 * @module
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import { AppError } from '../errors/index.ts'
import type { AppEnv } from './app-env.ts'

const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  requestId: z.string(),
})

const errorResponses = {
  400: {
    description: 'Invalid request',
    content: { 'application/json': { schema: ErrorBodySchema } },
  },
  401: {
    description: 'Missing or invalid token',
    content: { 'application/json': { schema: ErrorBodySchema } },
  },
  403: { description: 'Not allowed', content: { 'application/json': { schema: ErrorBodySchema } } },
  404: { description: 'Not found', content: { 'application/json': { schema: ErrorBodySchema } } },
} as const

/** A new router whose validation failures throw coded errors. */
export function createApiRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return
      const issues = result.error.issues.map((issue) => ({
        path: issue.path.map(String).join('.'),
        message: issue.message,
      }))
      throw new AppError(
        result.target === 'json' ? 'InvalidRequestBody' : 'InvalidQueryParameter',
        {
          details: { issues },
        },
      )
    },
  })
}

/** The request body part of a route: required JSON matching `schema`. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { 'application/json': { schema } } } as const
}

/** The responses of a route: the success one plus the standard error responses. */
export function responses<S extends 200 | 201 | 202, T extends z.ZodType>(status: S, schema: T) {
  return {
    ...errorResponses,
    [status]: { description: 'Success', content: { 'application/json': { schema } } },
  } as {
    [K in S]: { description: string; content: { 'application/json': { schema: T } } }
  } & typeof errorResponses
}

/** The responses of a route that answers 204 No Content on success. */
export const noContent = { ...errorResponses, 204: { description: 'Done' } } as const

/** Routes need a bearer access token with the `api` scope. */
export const bearerAuth = [{ bearer: [] }]

export { createRoute }
