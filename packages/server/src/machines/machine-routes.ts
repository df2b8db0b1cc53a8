/**
 * The machines API for people and service principals: registration tokens, machines, machine
 * groups, members and sharing.
 *
 * @module
 */
import {
  CreateMachineGroupRequest,
  CreateRegistrationTokenRequest,
  CreateShareRequest,
  Id,
  ListMachinesQuery,
  ListOf,
  Machine,
  MachineGroup,
  RegistrationToken,
  Share,
  UpdateMachineGroupRequest,
  UpdateMachineRequest,
} from '@desklink/protocol'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'

import type { AppEnv } from '../http/app-env.ts'
import { bearerAuth, createRoute, jsonBody, noContent, responses } from '../http/openapi-app.ts'
import type { Clock } from '../system/index.ts'
import { toApiGroup, toApiMachine, toApiShare } from './machine-mappers.ts'
import type { MachineService } from './machine-service.ts'

const EnvironmentParams = z.object({ environmentId: Id })
const MachineParams = z.object({ machineId: Id })
const MachineShareParams = z.object({ machineId: Id, shareId: Id })
const GroupParams = z.object({ groupId: Id })
const GroupShareParams = z.object({ groupId: Id, shareId: Id })
const MemberParams = z.object({ groupId: Id, machineId: Id })

const route = <T extends Parameters<typeof createRoute>[0]>(config: T) =>
  createRoute({ security: bearerAuth, ...config })

export const machineRouteDefinitions = {
  createRegistrationToken: route({
    method: 'post',
    path: '/environments/{environmentId}/registration-tokens',
    tags: ['Machines'],
    summary: 'Create a one-time machine registration token (valid one hour)',
    request: { params: EnvironmentParams, body: jsonBody(CreateRegistrationTokenRequest) },
    responses: responses(201, RegistrationToken),
  }),
  listMachines: route({
    method: 'get',
    path: '/machines',
    tags: ['Machines'],
    summary: 'List the machines the caller can access',
    request: { query: ListMachinesQuery },
    responses: responses(200, ListOf(Machine)),
  }),
  getMachine: route({
    method: 'get',
    path: '/machines/{machineId}',
    tags: ['Machines'],
    summary: 'Get a machine with its sessions',
    request: { params: MachineParams },
    responses: responses(200, Machine),
  }),
  updateMachine: route({
    method: 'patch',
    path: '/machines/{machineId}',
    tags: ['Machines'],
    summary:
      'Rename a machine or change its settings (maintenance, slots, reuse sessions, extended prioritization)',
    request: { params: MachineParams, body: jsonBody(UpdateMachineRequest) },
    responses: responses(200, Machine),
  }),
  deleteMachine: route({
    method: 'delete',
    path: '/machines/{machineId}',
    tags: ['Machines'],
    summary: 'Delete a machine: its agent stops acting for it at once',
    request: { params: MachineParams },
    responses: noContent,
  }),
  listMachineShares: route({
    method: 'get',
    path: '/machines/{machineId}/shares',
    tags: ['Machines'],
    summary: 'List who a machine is shared with',
    request: { params: MachineParams },
    responses: responses(200, ListOf(Share)),
  }),
  shareMachine: route({
    method: 'post',
    path: '/machines/{machineId}/shares',
    tags: ['Machines'],
    summary: 'Share a machine as co-owner or user',
    request: { params: MachineParams, body: jsonBody(CreateShareRequest) },
    responses: responses(201, Share),
  }),
  unshareMachine: route({
    method: 'delete',
    path: '/machines/{machineId}/shares/{shareId}',
    tags: ['Machines'],
    summary: 'Stop sharing a machine',
    request: { params: MachineShareParams },
    responses: noContent,
  }),
  listGroups: route({
    method: 'get',
    path: '/machine-groups',
    tags: ['Machine groups'],
    summary: 'List the machine groups the caller can access',
    request: { query: ListMachinesQuery },
    responses: responses(200, ListOf(MachineGroup)),
  }),
  createGroup: route({
    method: 'post',
    path: '/machine-groups',
    tags: ['Machine groups'],
    summary: 'Create a machine group; its first machine creates the group key and password',
    request: { body: jsonBody(CreateMachineGroupRequest) },
    responses: responses(201, MachineGroup),
  }),
  getGroup: route({
    method: 'get',
    path: '/machine-groups/{groupId}',
    tags: ['Machine groups'],
    summary: 'Get a machine group',
    request: { params: GroupParams },
    responses: responses(200, MachineGroup),
  }),
  updateGroup: route({
    method: 'patch',
    path: '/machine-groups/{groupId}',
    tags: ['Machine groups'],
    summary: 'Rename a group or change the settings its members inherit',
    request: { params: GroupParams, body: jsonBody(UpdateMachineGroupRequest) },
    responses: responses(200, MachineGroup),
  }),
  deleteGroup: route({
    method: 'delete',
    path: '/machine-groups/{groupId}',
    tags: ['Machine groups'],
    summary: 'Delete a group; members return to their own groups',
    request: { params: GroupParams },
    responses: noContent,
  }),
  listMembers: route({
    method: 'get',
    path: '/machine-groups/{groupId}/members',
    tags: ['Machine groups'],
    summary: 'List the machines of a group',
    request: { params: GroupParams },
    responses: responses(200, ListOf(Machine)),
  }),
  removeMember: route({
    method: 'delete',
    path: '/machine-groups/{groupId}/members/{machineId}',
    tags: ['Machine groups'],
    summary: 'Remove a machine from a group',
    request: { params: MemberParams },
    responses: noContent,
  }),
  listGroupShares: route({
    method: 'get',
    path: '/machine-groups/{groupId}/shares',
    tags: ['Machine groups'],
    summary: 'List who a group is shared with',
    request: { params: GroupParams },
    responses: responses(200, ListOf(Share)),
  }),
  shareGroup: route({
    method: 'post',
    path: '/machine-groups/{groupId}/shares',
    tags: ['Machine groups'],
    summary: 'Share a group as co-owner or user',
    request: { params: GroupParams, body: jsonBody(CreateShareRequest) },
    responses: responses(201, Share),
  }),
  unshareGroup: route({
    method: 'delete',
    path: '/machine-groups/{groupId}/shares/{shareId}',
    tags: ['Machine groups'],
    summary: 'Stop sharing a group',
    request: { params: GroupShareParams },
    responses: noContent,
  }),
} as const

export function registerMachineRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: {
    machines: MachineService
    clock: Clock
    heartbeatIntervalMs: number
    maxGroupMembers: number
  },
): void {
  const { machines, clock, heartbeatIntervalMs, maxGroupMembers } = deps
  const r = machineRouteDefinitions
  const machineOut = (view: Parameters<typeof toApiMachine>[0]) =>
    toApiMachine(view, heartbeatIntervalMs, clock.now())
  const groupOut = (view: Parameters<typeof toApiGroup>[0]) => toApiGroup(view, maxGroupMembers)

  app.openapi(r.createRegistrationToken, async (c) => {
    const { environmentId } = c.req.valid('param')
    const { token, expiresAt } = await machines.createRegistrationToken(
      c.get('principal'),
      environmentId,
    )
    return c.json({ token, environmentId, expiresAt }, 201)
  })
  app.openapi(r.listMachines, async (c) =>
    c.json(
      {
        items: (
          await machines.listMachines(c.get('principal'), c.req.valid('query').environmentId)
        ).map(machineOut),
      },
      200,
    ),
  )
  app.openapi(r.getMachine, async (c) =>
    c.json(
      machineOut(await machines.getMachine(c.get('principal'), c.req.valid('param').machineId)),
      200,
    ),
  )
  app.openapi(r.updateMachine, async (c) =>
    c.json(
      machineOut(
        await machines.updateMachine(
          c.get('principal'),
          c.req.valid('param').machineId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.deleteMachine, async (c) => {
    await machines.deleteMachine(c.get('principal'), c.req.valid('param').machineId)
    return c.body(null, 204)
  })
  app.openapi(r.listMachineShares, async (c) =>
    c.json(
      {
        items: (
          await machines.listMachineShares(c.get('principal'), c.req.valid('param').machineId)
        ).map(toApiShare),
      },
      200,
    ),
  )
  app.openapi(r.shareMachine, async (c) =>
    c.json(
      toApiShare(
        await machines.shareMachine(
          c.get('principal'),
          c.req.valid('param').machineId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.unshareMachine, async (c) => {
    const { machineId, shareId } = c.req.valid('param')
    await machines.unshareMachine(c.get('principal'), machineId, shareId)
    return c.body(null, 204)
  })

  app.openapi(r.listGroups, async (c) =>
    c.json(
      {
        items: (
          await machines.listGroups(c.get('principal'), c.req.valid('query').environmentId)
        ).map(groupOut),
      },
      200,
    ),
  )
  app.openapi(r.createGroup, async (c) =>
    c.json(groupOut(await machines.createGroup(c.get('principal'), c.req.valid('json'))), 201),
  )
  app.openapi(r.getGroup, async (c) =>
    c.json(
      groupOut(await machines.getGroup(c.get('principal'), c.req.valid('param').groupId)),
      200,
    ),
  )
  app.openapi(r.updateGroup, async (c) =>
    c.json(
      groupOut(
        await machines.updateGroup(
          c.get('principal'),
          c.req.valid('param').groupId,
          c.req.valid('json'),
        ),
      ),
      200,
    ),
  )
  app.openapi(r.deleteGroup, async (c) => {
    await machines.deleteGroup(c.get('principal'), c.req.valid('param').groupId)
    return c.body(null, 204)
  })
  app.openapi(r.listMembers, async (c) =>
    c.json(
      {
        items: (await machines.listMembers(c.get('principal'), c.req.valid('param').groupId)).map(
          machineOut,
        ),
      },
      200,
    ),
  )
  app.openapi(r.removeMember, async (c) => {
    const { groupId, machineId } = c.req.valid('param')
    await machines.removeMember(c.get('principal'), groupId, machineId)
    return c.body(null, 204)
  })
  app.openapi(r.listGroupShares, async (c) =>
    c.json(
      {
        items: (
          await machines.listGroupShares(c.get('principal'), c.req.valid('param').groupId)
        ).map(toApiShare),
      },
      200,
    ),
  )
  app.openapi(r.shareGroup, async (c) =>
    c.json(
      toApiShare(
        await machines.shareGroup(
          c.get('principal'),
          c.req.valid('param').groupId,
          c.req.valid('json'),
        ),
      ),
      201,
    ),
  )
  app.openapi(r.unshareGroup, async (c) => {
    const { groupId, shareId } = c.req.valid('param')
    await machines.unshareGroup(c.get('principal'), groupId, shareId)
    return c.body(null, 204)
  })
}
