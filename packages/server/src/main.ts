/**
 * The server's composition root: reads nothing itself (the resolved config is handed in),
 * builds the object graph, opens the database, migrates, bootstraps the first tenant, and
 * listens. Shutdown releases everything in reverse order: stop accepting, drain requests
 * (bounded by `shutdownTimeoutMs`), close the database.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'

import type { FlowManifest, PackageFile } from '@desklink/protocol'
import { createAdaptorServer } from '@hono/node-server'
import { type CompiledQuery, sql } from 'kysely'

import { createAuditLog } from './audit/audit-log.ts'
import {
  bootstrapFirstStart,
  type BootstrapResult,
  DEFAULT_TENANT_SLUG,
} from './bootstrap/first-start.ts'
import type { ServerConfig } from './config/index.ts'
import { createConnectionService, registerConnectionRoutes } from './connections/index.ts'
import {
  createCredentialResolver,
  createCredentialService,
  createCyberArkApplicationService,
  registerCredentialRoutes,
  type ResolvedCredential,
} from './credentials/index.ts'
import { AppError } from './errors/index.ts'
import { createFlowService, registerFlowRoutes } from './flows/index.ts'
import { authenticate } from './http/authenticate.ts'
import { createApp } from './http/create-app.ts'
import { LARGE_BODY_ROUTES } from './http/large-bodies.ts'
import { noteArrival } from './http/request-context.ts'
import { registerIdentityRoutes } from './identity/identity-routes.ts'
import { createIdentityService } from './identity/identity-service.ts'
import { createIdentityStores, createIdentityTransaction } from './identity/identity-stores.ts'
import type { Logger } from './logging/index.ts'
import {
  type AgentNotifier,
  type ChannelHub,
  createAgentService,
  createChannelHub,
  createHeartbeatRecorder,
  createMachineAccess,
  createMachineService,
  createMachineStore,
  createMembershipEvents,
  type MembershipEvents,
  registerAgentRoutes,
  registerMachineRoutes,
} from './machines/index.ts'
import { createRuns, type Dispatcher, registerRunRoutes } from './runs/index.ts'
import { createSecretStoreService, registerSecretStoreRoutes } from './secret-stores/index.ts'
import { createMac, createSecretBox, loadMasterKey } from './secrets/index.ts'
import { createShareStore } from './sharing/share-store.ts'
import { createWriteBatcher, migrateToLatest, openStorage } from './storage/index.ts'
import {
  type Clock,
  createReleasers,
  type IdGenerator,
  systemClock,
  uuidv7,
} from './system/index.ts'
import { createAccessTokenService } from './tokens/access-token-service.ts'
import { createAuthorizationServers } from './tokens/authorization-server.ts'
import { createOAuthRoutes } from './tokens/oauth-routes.ts'
import { createOAuthStore } from './tokens/oauth-store.ts'
import { createSignInGrants } from './tokens/sign-in-grants.ts'
import { createSigningKeyService } from './tokens/signing-key-service.ts'

export const SERVER_VERSION = '0.1.0'

/** A started server. */
export interface RunningServer {
  /** The URL the server listens on, e.g. `http://127.0.0.1:8470`. */
  readonly url: string
  /** The base of token issuers and links: `publicUrl` or `url`. */
  readonly publicUrl: string
  readonly bootstrap: BootstrapResult
  /**
   * A registration token for the default environment of the first tenant, issued as its first
   * administrator: what `desklink up` uses to register the local agent. In-process only.
   */
  issueLocalRegistrationToken(): Promise<string>
  /**
   * Adds a desktop flow to the default environment as its first administrator, unless a flow
   * of that name is there already (what `desklink up` does with its sample). In-process only.
   */
  installFlow(pkg: {
    manifest: FlowManifest
    files: PackageFile[]
  }): Promise<{ id: string; installed: boolean }>
  /** Run-time resolution of a credential for a machine group (used by runs). In-process only. */
  resolveCredential(input: {
    tenantId: string
    credentialId: string
    groupId: string
  }): Promise<ResolvedCredential>
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>
}

export interface ServerOverrides {
  readonly clock?: Clock
  readonly newId?: IdGenerator
  /** Lets a test or another domain observe group membership changes. */
  readonly membership?: MembershipEvents
  /** Lets a test watch every statement the server runs. */
  readonly onQuery?: (query: CompiledQuery) => void
}

/**
 * @example
 * ```ts
 * const server = await startServer(resolveServerConfig(process.env), createLogger({ level: 'info' }))
 * process.once('SIGTERM', () => void server.close())
 * ```
 */
export async function startServer(
  config: ServerConfig,
  logger: Logger,
  overrides: ServerOverrides = {},
): Promise<RunningServer> {
  const clock = overrides.clock ?? systemClock
  const newId = overrides.newId ?? (() => uuidv7(clock.now().getTime()))
  const releasers = createReleasers((name, error) =>
    logger.error({ err: error, resource: name }, 'release failed'),
  )

  try {
    const { key: masterKey, source } = loadMasterKey({
      fromEnvironment: config.masterKey,
      keyFile: config.masterKeyFile,
      createIfMissing: config.createMasterKey,
    })
    logger.info(
      { source, ...(source !== 'environment' && { file: config.masterKeyFile }) },
      'master key loaded',
    )
    const secretBox = createSecretBox(masterKey)
    const challengeMac = createMac(masterKey, 'group-join-challenge')
    masterKey.fill(0)

    const storage = openStorage(config.databaseUrl, {
      ...(overrides.onQuery && { onQuery: overrides.onQuery }),
      onCheckpointerFailure: (error) =>
        logger.warn(
          { err: error },
          'the SQLite checkpoint worker failed: the server checkpoints the log itself from now on',
        ),
      onIdleConnectionLost: (error) =>
        logger.warn({ err: error }, 'an idle database connection was lost; another is opened'),
    })
    releasers.add('database', () => storage.close())
    const migration = await migrateToLatest(storage)
    if (migration.error) throw migration.error
    logger.info({ dialect: storage.dialect, applied: migration.applied }, 'database ready')

    let publicUrl = config.publicUrl ?? ''
    const stores = createIdentityStores(storage.db)
    const signingKeys = createSigningKeyService({ db: storage.db, secretBox, clock })
    const tokens = createAccessTokenService({
      publicUrl: () => publicUrl,
      tenants: stores.tenants,
      signingKeys,
      clock,
      ttlSeconds: config.accessTokenTtlSeconds,
    })
    const identity = createIdentityService({
      stores,
      transaction: createIdentityTransaction(storage.db),
      prepareSigningKey: (tenantId) => signingKeys.prepareKey(tenantId),
      isUniqueViolation: storage.isUniqueViolation,
      clock,
      newId,
    })
    const bootstrap = await bootstrapFirstStart({
      tenants: stores.tenants,
      identity,
      adminUsername: config.adminUsername,
      adminPassword: config.adminPassword,
      isUniqueViolation: storage.isUniqueViolation,
    })
    if (bootstrap.created) {
      logger.info({ adminUsername: bootstrap.adminUsername }, 'first start: default tenant created')
    }

    const oauth = createOAuthStore(storage.db)
    const authorizationServers = createAuthorizationServers({
      principals: stores.principals,
      oauth,
      tokens,
      clock,
      newId,
      accessTokenTtlSeconds: config.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
      logger,
    })
    const machineStore = createMachineStore(storage.db)
    const shareStore = createShareStore(storage.db, storage.isUniqueViolation)
    const membership = overrides.membership ?? createMembershipEvents()
    // The services tell agents about changes through the hub, which needs the agent service:
    // the notifier forwards to the hub once it exists.
    const hub: { current?: ChannelHub } = {}
    const dispatcherRef: { current?: Dispatcher } = {}
    const notifier: AgentNotifier = {
      machineChanged: async (machineId, left) => {
        await hub.current?.machineChanged(machineId)
        // Settings (maintenance, slots, ...) decide placement: look at the queue again.
        await dispatcherRef.current?.machineChanged(machineId, left)
      },
      machineDeleted: (machineId, targets) => {
        hub.current?.machineDeleted(machineId, targets)
        dispatcherRef.current?.machineDeleted(machineId, targets)
      },
    }
    const machineAccess = createMachineAccess({
      roles: stores.roles,
      shares: shareStore,
      environmentExists: async (tenantId, environmentId) =>
        (await stores.tenants.findEnvironment(tenantId, environmentId)) !== undefined,
    })
    const machineService = createMachineService({
      machines: machineStore,
      shares: shareStore,
      tenants: stores.tenants,
      principals: stores.principals,
      access: machineAccess,
      notifier,
      clock,
      newId,
      maxGroupMembers: config.maxGroupMembers,
    })
    const heartbeats = createHeartbeatRecorder({ db: storage.db, logger })
    // Released before the database: the heartbeats still waiting are stored.
    releasers.add('heartbeats', () => heartbeats.stop())
    const agentService = createAgentService({
      machines: machineStore,
      machineService,
      oauth,
      membership,
      notifier,
      challengeMac,
      publicUrl: () => publicUrl,
      clock,
      newId,
      maxGroupMembers: config.maxGroupMembers,
      transaction: (work) => storage.db.transaction().execute((tx) => work(createMachineStore(tx))),
      heartbeats,
    })
    const channel = createChannelHub({
      agents: agentService,
      logger,
      heartbeatIntervalMs: config.agentHeartbeatMs,
      runs: () => dispatcherRef.current,
    })
    hub.current = channel
    const principalAuth = { tokens, principals: stores.principals }

    const secretStores = createSecretStoreService({
      db: storage.db,
      secretBox,
      access: machineAccess,
      clock,
      newId,
      isUniqueViolation: storage.isUniqueViolation,
    })
    const credentials = createCredentialService({
      db: storage.db,
      secretBox,
      secretStores,
      machines: machineService,
      access: machineAccess,
      shares: shareStore,
      principals: stores.principals,
      clock,
      newId,
      isUniqueViolation: storage.isUniqueViolation,
      // The connection service is made below, with what it needs of this one.
      credentialDeleted: (tenantId, credentialId) =>
        connections.breakCredentialConnections(tenantId, credentialId),
    })
    const cyberArk = createCyberArkApplicationService({
      db: storage.db,
      machines: machineService,
      shares: shareStore,
      clock,
    })
    const audit = createAuditLog({ db: storage.db, clock, newId })
    const resolver = createCredentialResolver({ db: storage.db, secretBox, secretStores })
    const connections = createConnectionService({
      db: storage.db,
      machines: machineService,
      access: machineAccess,
      resolver,
      credentialAccess: async (principal, credentialId) => {
        await credentials.get(principal, credentialId)
      },
      hub: () => channel,
      audit,
      shares: shareStore,
      principals: stores.principals,
      oauth,
      signIn: createSignInGrants({ servers: authorizationServers, tokens, secretBox }),
      tenantOf: async (tenantId) => {
        const tenant = await stores.tenants.findTenantById(tenantId)
        if (!tenant) throw new AppError('ResourceNotFound')
        return tenant
      },
      clock,
      newId,
    })
    const flows = createFlowService({
      db: storage.db,
      access: machineAccess,
      shares: shareStore,
      audit,
      clock,
      newId,
      isUniqueViolation: storage.isUniqueViolation,
    })
    const runs = createRuns({
      db: storage.db,
      writes: createWriteBatcher(storage.db, { isUnavailable: storage.isUnavailable }),
      flows,
      connections,
      machines: machineService,
      access: machineAccess,
      agents: agentService,
      hub: () => channel,
      resolver,
      credentialAccess: async (principal, credentialId) => {
        await credentials.get(principal, credentialId)
      },
      principals: stores.principals,
      tenants: stores.tenants,
      audit,
      clock,
      newId,
      logger,
      leaseMs: config.agentHeartbeatMs * 3,
      eventsSweepMs: config.runEventsSweepMs,
      callbackCaPem: config.callbackCaFile && readFileSync(config.callbackCaFile, 'utf8'),
      callbackAllowedHosts: config.callbackAllowedHosts,
    })
    dispatcherRef.current = runs.dispatcher
    releasers.add('run dispatcher', () => runs.dispatcher.stop())
    releasers.add('run events retention', () => runs.retention.stop())
    membership.onMachineJoinedGroup((event) =>
      connections.breakMachineConnections(event.tenantId, event.standaloneGroupId, event.groupId),
    )

    const app = createApp({
      logger,
      maxBodyBytes: config.maxBodyBytes,
      largeBodies: LARGE_BODY_ROUTES,
      version: SERVER_VERSION,
      checkReady: async () => {
        await sql`select 1`.execute(storage.db)
      },
      isUnavailable: storage.isUnavailable,
      authenticate: authenticate(principalAuth),
      oauthRoutes: createOAuthRoutes({
        tenants: stores.tenants,
        principals: stores.principals,
        oauth,
        tokens,
        signingKeys,
        clock,
        servers: authorizationServers,
        logger,
      }),
      registerSelfAuthenticatedRoutes: (api) =>
        registerAgentRoutes(api, {
          agents: agentService,
          machines: machineService,
          principalAuth,
          maxGroupMembers: config.maxGroupMembers,
          flowPackage: (tenantId, machineId, hash) => flows.packageFor(tenantId, machineId, hash),
        }),
      registerApiRoutes: (api) => {
        registerIdentityRoutes(api, { identity, issuerOf: tokens.issuerOf })
        registerMachineRoutes(api, {
          machines: machineService,
          clock,
          heartbeatIntervalMs: config.agentHeartbeatMs,
          maxGroupMembers: config.maxGroupMembers,
        })
        registerSecretStoreRoutes(api, { stores: secretStores })
        registerCredentialRoutes(api, { credentials, cyberArk })
        registerConnectionRoutes(api, { connections, credentials })
        registerFlowRoutes(api, {
          flows,
          principalExists: async (tenantId, type, id) =>
            type === 'user'
              ? (await stores.principals.findUser(tenantId, id)) !== undefined
              : (await stores.principals.findServicePrincipal(tenantId, id)) !== undefined,
        })
        registerRunRoutes(api, {
          runs: runs.service,
          toApi: runs.toApi,
          publicUrl: () => config.publicUrl,
        })
      },
    })

    const server = createAdaptorServer({ fetch: app.fetch, hostname: config.host })
    server.prependListener('request', noteArrival)
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      channel.handleUpgrade(request, socket, head),
    )
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.port, config.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    const url = `http://${host}:${address.port}`
    publicUrl = config.publicUrl ?? url
    releasers.add('http server', () => closeHttpServer(server, config.shutdownTimeoutMs))
    // Released before the HTTP server: agent sockets would otherwise hold it open.
    releasers.add('agent channel', () => channel.close())
    await runs.dispatcher.start()
    runs.retention.start()
    // Not awaited: the server answers while it makes them.
    void runs.callbacks
      .resume()
      .catch((error: unknown) =>
        logger.error({ err: error }, 'making the callbacks still owed failed'),
      )
    logger.info({ url, publicUrl }, 'listening')

    return {
      url,
      publicUrl,
      bootstrap,
      issueLocalRegistrationToken: async () => {
        const { principal, environment } = await localAdmin(stores)
        return (await machineService.createRegistrationToken(principal, environment.id)).token
      },
      async installFlow(pkg) {
        const { principal, environment } = await localAdmin(stores)
        const existing = (await flows.list(principal, environment.id)).find(
          (f) => f.flow.name === pkg.manifest.name,
        )
        if (existing) return { id: existing.flow.id, installed: false }
        return { id: (await flows.push(principal, environment.id, pkg)).flow.id, installed: true }
      },
      resolveCredential: (input) => resolver.resolveForGroup(input),
      close: () => releasers.releaseAll(),
    }
  } catch (error) {
    await releasers.releaseAll().catch(() => undefined)
    throw error
  }
}

/** The first administrator of the first tenant, and its default environment. */
async function localAdmin(stores: ReturnType<typeof createIdentityStores>) {
  const tenant = await stores.tenants.findTenantBySlug(DEFAULT_TENANT_SLUG)
  const admin =
    tenant && (await stores.principals.listUsers(tenant.id)).find((u) => u.isPlatformAdmin)
  const environment =
    tenant && (await stores.tenants.listEnvironments(tenant.id)).find((e) => e.name === 'default')
  if (!tenant || !admin || !environment)
    throw new Error('The default tenant, environment or administrator is missing')
  const principal = {
    type: 'user' as const,
    id: admin.id,
    name: admin.username,
    tenant,
    isTenantAdmin: true,
    isPlatformAdmin: true,
    scopes: ['api'],
  }
  return { principal, environment }
}

/** Stops accepting, lets requests in flight finish, then cuts what is left. */
function closeHttpServer(
  server: ReturnType<typeof createAdaptorServer>,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections()
    }, timeoutMs)
    timer.unref()
    server.close(() => {
      clearTimeout(timer)
      resolve()
    })
    if ('closeIdleConnections' in server) server.closeIdleConnections()
  })
}
