/**
 * The agent's REST side under `/api/v1/agent`: registration (authenticated by the one-time
 * token), and group membership (authenticated by a machine assertion in
 * `X-Desklink-Machine-Assertion` plus the bearer token of the person or service principal who
 * manages the machine and the group). These routes are registered before the principal
 * authentication middleware, which they do not go through.
 *
 * @module
 */
import {
  AgentJoinInfo,
  AgentJoinRequest,
  AgentRegisterRequest,
  AgentRegistration,
  FlowManifest,
  Id,
  MACHINE_ASSERTION_HEADER,
  MachineGroup,
  PackageFile,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { z } from 'zod'

import { AppError } from '../errors/index.ts'
import type { AppEnv } from '../http/app-env.ts'
import { authenticatePrincipal, type PrincipalAuthDeps } from '../http/authenticate.ts'
import { createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import type { AgentService } from './agent-service.ts'
import { toApiGroup } from './machine-mappers.ts'
import type { MachineService } from './machine-service.ts'
import type { MachineRecord } from './machine-store.ts'

const GroupParams = z.object({ groupId: Id })
const machineAndPrincipal = [{ machineAssertion: [], bearer: [] }]
const machineOnly = [{ machineAssertion: [] }]
const FlowPackage = z.object({ manifest: FlowManifest, files: z.array(PackageFile) })

export const agentRouteDefinitions = {
  register: createRoute({
    method: 'post',
    path: '/agent/register',
    tags: ['Agent'],
    summary: 'Register a machine with a one-time registration token (agent only)',
    request: { body: jsonBody(AgentRegisterRequest) },
    responses: responses(201, AgentRegistration),
  }),
  joinInfo: createRoute({
    method: 'get',
    path: '/agent/groups/{groupId}/join',
    tags: ['Agent'],
    summary: 'What a machine needs to join a group: key package and a key challenge (agent only)',
    security: machineAndPrincipal,
    request: { params: GroupParams },
    responses: responses(200, AgentJoinInfo),
  }),
  join: createRoute({
    method: 'post',
    path: '/agent/groups/{groupId}/join',
    tags: ['Agent'],
    summary: 'Join a machine group, proving possession of the group key (agent only)',
    security: machineAndPrincipal,
    request: { params: GroupParams, body: jsonBody(AgentJoinRequest) },
    responses: responses(200, MachineGroup),
  }),
  leave: createRoute({
    method: 'post',
    path: '/agent/group/leave',
    tags: ['Agent'],
    summary: 'Leave the machine group (agent only)',
    security: machineAndPrincipal,
    responses: noContent,
  }),
  flowPackage: createRoute({
    method: 'get',
    path: '/agent/flow-packages/{contentHash}',
    tags: ['Agent'],
    summary: 'Download a desktop flow package this machine was offered a run of (agent only)',
    security: machineOnly,
    request: { params: z.object({ contentHash: z.string().max(128) }) },
    responses: responses(200, FlowPackage),
  }),
} as const

export function registerAgentRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: {
    agents: AgentService
    machines: MachineService
    principalAuth: PrincipalAuthDeps
    maxGroupMembers: number
    flowPackage: (
      tenantId: string,
      machineId: string,
      contentHash: string,
    ) => Promise<z.infer<typeof FlowPackage> | undefined>
  },
): void {
  const { agents } = deps
  const r = agentRouteDefinitions

  async function callers(c: Context<AppEnv>): Promise<{
    machine: MachineRecord
    principal: Awaited<ReturnType<typeof authenticatePrincipal>>
  }> {
    const assertion = c.req.header(MACHINE_ASSERTION_HEADER)
    if (!assertion)
      throw new AppError('MachineAuthenticationFailed', {
        details: { reason: 'missing assertion' },
      })
    const machine = await agents.authenticate(assertion)
    const principal = await authenticatePrincipal(deps.principalAuth, c.req.header('authorization'))
    c.set('principal', principal)
    return { machine, principal }
  }

  app.openapi(r.register, async (c) => {
    const machine = await agents.register(c.req.valid('json'))
    c.get('logger').info(
      { machineId: machine.id, tenantId: machine.tenantId },
      'machine registered',
    )
    return c.json(
      {
        machineId: machine.id,
        tenantId: machine.tenantId,
        environmentId: machine.environmentId,
        standaloneGroupId: machine.standaloneGroupId,
        name: machine.name,
      },
      201,
    )
  })
  app.openapi(r.joinInfo, async (c) => {
    const { machine, principal } = await callers(c)
    return c.json(await agents.joinInfo(machine, principal, c.req.valid('param').groupId), 200)
  })
  app.openapi(r.join, async (c) => {
    const { machine, principal } = await callers(c)
    const group = await agents.join(
      machine,
      principal,
      c.req.valid('param').groupId,
      c.req.valid('json'),
    )
    c.get('logger').info({ machineId: machine.id, groupId: group.id }, 'machine joined group')
    return c.json(
      toApiGroup(await deps.machines.getGroup(principal, group.id), deps.maxGroupMembers),
      200,
    )
  })
  app.openapi(r.flowPackage, async (c) => {
    const assertion = c.req.header(MACHINE_ASSERTION_HEADER)
    if (!assertion)
      throw new AppError('MachineAuthenticationFailed', {
        details: { reason: 'missing assertion' },
      })
    const machine = await agents.authenticate(assertion)
    const { contentHash } = c.req.valid('param')
    const found =
      /^[0-9a-f]{64}$/.test(contentHash) &&
      (await deps.flowPackage(machine.tenantId, machine.id, contentHash))
    if (!found) throw new AppError('ResourceNotFound')
    return c.json(found, 200)
  })
  app.openapi(r.leave, async (c) => {
    const { machine, principal } = await callers(c)
    await agents.leave(machine, principal)
    return c.body(null, 204)
  })
}
