/**
 * Administration verbs over the REST API: tenants, environments, users, service principals and
 * role assignments. Every verb takes `--json`; secrets the server generates are printed once.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import type {
  Environment,
  RoleAssignment,
  ServicePrincipal,
  ServicePrincipalCredential,
  Tenant,
  User,
} from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject, printTable } from '../output/print.ts'
import { wholeNumber } from './option-values.ts'

type Items<T> = { items: T[] }

const id = (value: string) => encodeURIComponent(value)

function status(value: string | undefined): 'active' | 'deactivated' | undefined {
  if (value === undefined) return undefined
  if (value === 'active' || value === 'deactivated') return value
  throw new CliError('InvalidOption', `--status takes active or deactivated, not '${value}'.`, {
    exitCode: 2,
  })
}

export function registerAdminCommands(program: Command, io: CliIo): void {
  const api = () => apiClientFor(io)

  const tenants = program
    .command('tenants')
    .description('Tenants: each is its own token issuer (platform administrator).')
  tenants
    .command('list')
    .description('List tenants.')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<Tenant>>('GET', '/tenants')
      printTable(io, o, items, ['id', 'slug', 'displayName', 'status', 'issuer'], items)
    })
  tenants
    .command('create <slug>')
    .description('Create a tenant with a default environment and its first administrator.')
    .requiredOption('--display-name <name>', 'display name')
    .option('--admin-username <name>', 'first administrator', 'admin')
    .option(
      '--admin-password-stdin',
      'read the administrator password from stdin (else one is generated)',
    )
    .option('--json', 'print JSON')
    .action(async (slug, o) => {
      const adminPassword = o.adminPasswordStdin
        ? (await io.readStdin()).replace(/\r?\n$/, '')
        : undefined
      const created = await api().request<{
        tenant: Tenant
        environment: Environment
        admin: User & { password?: string }
      }>('POST', '/tenants', {
        slug,
        displayName: o.displayName,
        adminUsername: o.adminUsername,
        ...(adminPassword && { adminPassword }),
      })
      if (o.json) return printObject(io, o, created)
      printObject(io, o, {
        tenant: created.tenant.slug,
        id: created.tenant.id,
        issuer: created.tenant.issuer,
        environment: created.environment.name,
        admin: created.admin.username,
      })
      if (created.admin.password)
        io.out(`Administrator password (shown this once): ${created.admin.password}\n`)
    })
  tenants
    .command('show <tenantId>')
    .description('Show a tenant.')
    .option('--json', 'print JSON')
    .action(async (tenantId, o) =>
      printObject(io, o, await api().request<Tenant>('GET', `/tenants/${id(tenantId)}`)),
    )
  tenants
    .command('update <tenantId>')
    .description('Rename, deactivate or reactivate a tenant.')
    .option('--display-name <name>', 'new display name')
    .option('--status <status>', 'active or deactivated')
    .option('--json', 'print JSON')
    .action(async (tenantId, o) =>
      printObject(
        io,
        o,
        await api().request<Tenant>('PATCH', `/tenants/${id(tenantId)}`, {
          displayName: o.displayName,
          status: status(o.status),
        }),
      ),
    )

  const environments = program
    .command('environments')
    .alias('env')
    .description('Environments: where machines, connections, flows and runs live.')
  environments
    .command('list')
    .description('List environments you have a role in (all, for tenant administrators).')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<Environment>>('GET', '/environments')
      printTable(io, o, items, ['id', 'name', 'description'], items)
    })
  environments
    .command('create <name>')
    .description('Create an environment (tenant administrator).')
    .option('--description <text>', 'description', '')
    .option('--json', 'print JSON')
    .action(async (name, o) =>
      printObject(
        io,
        o,
        await api().request<Environment>('POST', '/environments', {
          name,
          description: o.description,
        }),
      ),
    )
  environments
    .command('show <environmentId>')
    .description('Show an environment.')
    .option('--json', 'print JSON')
    .action(async (environmentId, o) =>
      printObject(
        io,
        o,
        await api().request<Environment>('GET', `/environments/${id(environmentId)}`),
      ),
    )
  environments
    .command('update <environmentId>')
    .description('Rename or describe an environment.')
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--json', 'print JSON')
    .action(async (environmentId, o) =>
      printObject(
        io,
        o,
        await api().request<Environment>('PATCH', `/environments/${id(environmentId)}`, {
          name: o.name,
          description: o.description,
        }),
      ),
    )
  environments
    .command('delete <environmentId>')
    .description('Delete an environment and everything in it.')
    .option('--json', 'print JSON')
    .action(async (environmentId, o) => {
      await api().request('DELETE', `/environments/${id(environmentId)}`)
      printObject(io, o, { deleted: environmentId })
    })

  const users = program.command('users').description('Users of your tenant.')
  users
    .command('list')
    .description('List users.')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<User>>('GET', '/users')
      printTable(io, o, items, ['id', 'username', 'displayName', 'status', 'isTenantAdmin'], items)
    })
  users
    .command('create <username>')
    .description(
      'Create a user. Without --password-stdin a password is generated and printed once.',
    )
    .option('--display-name <name>', 'display name')
    .option('--password-stdin', 'read the password from stdin')
    .option('--tenant-admin', 'make the user a tenant administrator')
    .option('--json', 'print JSON')
    .action(async (username, o) => {
      const password = o.passwordStdin ? (await io.readStdin()).replace(/\r?\n$/, '') : undefined
      const user = await api().request<User & { password?: string }>('POST', '/users', {
        username,
        displayName: o.displayName,
        isTenantAdmin: Boolean(o.tenantAdmin),
        ...(password && { password }),
      })
      if (o.json) return printObject(io, o, user)
      const { password: generated, ...shown } = user
      printObject(io, o, shown)
      if (generated) io.out(`Password (shown this once): ${generated}\n`)
    })
  users
    .command('show <userId>')
    .description('Show a user.')
    .option('--json', 'print JSON')
    .action(async (userId, o) =>
      printObject(io, o, await api().request<User>('GET', `/users/${id(userId)}`)),
    )
  users
    .command('update <userId>')
    .description('Update a user: display name, status, tenant administrator, password.')
    .option('--display-name <name>', 'new display name')
    .option('--status <status>', 'active or deactivated')
    .option('--tenant-admin <yes|no>', 'grant or revoke tenant administration')
    .option('--password-stdin', 'set a new password read from stdin')
    .option('--json', 'print JSON')
    .action(async (userId, o) => {
      const password = o.passwordStdin ? (await io.readStdin()).replace(/\r?\n$/, '') : undefined
      const isTenantAdmin =
        o.tenantAdmin === undefined ? undefined : /^(yes|true|1)$/i.test(o.tenantAdmin)
      printObject(
        io,
        o,
        await api().request<User>('PATCH', `/users/${id(userId)}`, {
          displayName: o.displayName,
          status: status(o.status),
          isTenantAdmin,
          password,
        }),
      )
    })

  const sps = program
    .command('service-principals')
    .alias('sp')
    .description('Service principals: applications that call the API.')
  sps
    .command('list')
    .description('List service principals.')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<ServicePrincipal>>('GET', '/service-principals')
      printTable(io, o, items, ['clientId', 'name', 'status', 'description'], items)
    })
  sps
    .command('create <name>')
    .description('Create a service principal. Its client secret is printed once; store it now.')
    .option('--description <text>', 'description', '')
    .option('--no-secret', 'create it without a client secret (add a certificate instead)')
    .option('--json', 'print JSON')
    .action(async (name, o) => {
      const sp = await api().request<
        ServicePrincipal & { secret?: ServicePrincipalCredential & { clientSecret: string } }
      >('POST', '/service-principals', { name, description: o.description, withSecret: o.secret })
      if (o.json) return printObject(io, o, sp)
      printObject(io, o, { clientId: sp.clientId, name: sp.name, status: sp.status })
      if (sp.secret) io.out(`Client secret (shown this once): ${sp.secret.clientSecret}\n`)
    })
  sps
    .command('show <clientId>')
    .description('Show a service principal.')
    .option('--json', 'print JSON')
    .action(async (clientId, o) =>
      printObject(
        io,
        o,
        await api().request<ServicePrincipal>('GET', `/service-principals/${id(clientId)}`),
      ),
    )
  sps
    .command('update <clientId>')
    .description('Rename, describe, deactivate or reactivate a service principal.')
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--status <status>', 'active or deactivated')
    .option('--json', 'print JSON')
    .action(async (clientId, o) =>
      printObject(
        io,
        o,
        await api().request<ServicePrincipal>('PATCH', `/service-principals/${id(clientId)}`, {
          name: o.name,
          description: o.description,
          status: status(o.status),
        }),
      ),
    )
  sps
    .command('delete <clientId>')
    .description('Delete a service principal with its credentials and roles.')
    .option('--json', 'print JSON')
    .action(async (clientId, o) => {
      await api().request('DELETE', `/service-principals/${id(clientId)}`)
      printObject(io, o, { deleted: clientId })
    })
  sps
    .command('credentials <clientId>')
    .description('List the secrets and certificates of a service principal (never their values).')
    .option('--json', 'print JSON')
    .action(async (clientId, o) => {
      const { items } = await api().request<Items<ServicePrincipalCredential>>(
        'GET',
        `/service-principals/${id(clientId)}/credentials`,
      )
      printTable(io, o, items, ['id', 'kind', 'hint', 'expiresAt', 'createdAt'], items)
    })
  sps
    .command('add-secret <clientId>')
    .description('Add a client secret; it is printed once.')
    .option('--expires-in-days <days>', 'lifetime in days (1-730)', '365')
    .option('--json', 'print JSON')
    .action(async (clientId, o) => {
      const secret = await api().request<ServicePrincipalCredential & { clientSecret: string }>(
        'POST',
        `/service-principals/${id(clientId)}/secrets`,
        { expiresInDays: wholeNumber('--expires-in-days', o.expiresInDays) },
      )
      if (o.json) return printObject(io, o, secret)
      printObject(io, o, { id: secret.id, expiresAt: secret.expiresAt })
      io.out(`Client secret (shown this once): ${secret.clientSecret}\n`)
    })
  sps
    .command('add-certificate <clientId> <publicKeyFile>')
    .description('Register a certificate or public key (PEM) for private_key_jwt sign-in.')
    .option('--json', 'print JSON')
    .action(async (clientId, file, o) => {
      const publicKey = readFileSync(resolve(io.cwd, file), 'utf8')
      printObject(
        io,
        o,
        await api().request<ServicePrincipalCredential>(
          'POST',
          `/service-principals/${id(clientId)}/certificates`,
          { publicKey },
        ),
      )
    })
  sps
    .command('remove-credential <clientId> <credentialId>')
    .description('Remove a secret or certificate.')
    .option('--json', 'print JSON')
    .action(async (clientId, credentialId, o) => {
      await api().request(
        'DELETE',
        `/service-principals/${id(clientId)}/credentials/${id(credentialId)}`,
      )
      printObject(io, o, { deleted: credentialId })
    })

  const roles = program
    .command('roles')
    .description(
      'Environment roles: EnvironmentAdmin, EnvironmentMaker, MachineOwner, MachineUser.',
    )
  roles
    .command('list')
    .description('List the role assignments of an environment.')
    .requiredOption('--environment <id>', 'environment id')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { items } = await api().request<Items<RoleAssignment>>(
        'GET',
        `/environments/${id(o.environment)}/role-assignments`,
      )
      printTable(io, o, items, ['id', 'role', 'principalType', 'principalId'], items)
    })
  roles
    .command('assign <role>')
    .description(
      'Give a user (--user) or service principal (--service-principal) a role in an environment.',
    )
    .requiredOption('--environment <id>', 'environment id')
    .option('--user <id>', 'user id')
    .option('--service-principal <clientId>', 'service principal client id')
    .option('--json', 'print JSON')
    .action(async (role, o) => {
      if (Boolean(o.user) === Boolean(o.servicePrincipal)) {
        throw new CliError('InvalidOption', 'Name exactly one of --user or --service-principal.', {
          exitCode: 2,
        })
      }
      const body = o.user
        ? { principalType: 'user', principalId: o.user, role }
        : { principalType: 'servicePrincipal', principalId: o.servicePrincipal, role }
      printObject(
        io,
        o,
        await api().request<RoleAssignment>(
          'POST',
          `/environments/${id(o.environment)}/role-assignments`,
          body,
        ),
      )
    })
  roles
    .command('remove <assignmentId>')
    .description('Remove a role assignment.')
    .requiredOption('--environment <id>', 'environment id')
    .option('--json', 'print JSON')
    .action(async (assignmentId, o) => {
      await api().request(
        'DELETE',
        `/environments/${id(o.environment)}/role-assignments/${id(assignmentId)}`,
      )
      printObject(io, o, { deleted: assignmentId })
    })
}
