/**
 * The agent daemon (`desklink agent run`): checks its registration against the local policy,
 * watches sessions, and keeps the channel to the server.
 *
 * Modes: `starting` → `connecting` ⇄ `connected` / `backing-off` → `stopped` (asked to stop) or
 * `deleted` (the server deleted the machine: the agent records it and refuses to start again
 * until the machine is registered anew). The current mode is written to `status.json` for
 * `desklink agent status`.
 *
 * @module
 */
import { rmdirSync } from 'node:fs'

import type { AgentConnectionTestResult, MachineSettings, SessionInfo } from '@desklink/protocol'
import type { DeliveredCredential as DeliveredCredentialSchema } from '@desklink/protocol'
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import type { z } from 'zod'

import { mapUsername } from './accounts/map-username.ts'
import { AgentError } from './agent-error.ts'
import type { AgentLogger } from './agent-logger.ts'
import { type AgentChannel, type ChannelMode, createAgentChannel } from './channel/agent-channel.ts'
import type { AgentConfig } from './config/agent-config.ts'
import { signMachineAssertion } from './keys/machine-keys.ts'
import type { PamOutcome } from './pam/pam-check.ts'
import { type AgentPolicy, assertTenantAllowed, loadAgentPolicy } from './policy/agent-policy.ts'
import { AGENT_VERSION } from './registration/register-machine.ts'
import { createScriptExecutor } from './runs/flow-executor.ts'
import { createPackageCache } from './runs/flow-packages.ts'
import { detectRunCgroups, type RunCgroups } from './runs/run-cgroups.ts'
import { createRunJournal } from './runs/run-journal.ts'
import { createRunManager, type Identity, type RunManager } from './runs/run-manager.ts'
import { openCredential } from './secrets/resolved-credential.ts'
import { createLogindSessionProvider, logindAvailable } from './sessions/logind-sessions.ts'
import { createSessionWatcher, type SessionWatcher } from './sessions/session-watcher.ts'
import { createX11SessionProvider } from './sessions/x11-sessions.ts'
import { signInUsername, verifySignInToken } from './sign-in/verify-sign-in-token.ts'
import type { StateStore } from './state/agent-state.ts'

export type AgentMode = 'starting' | ChannelMode

const PAM_DETAILS: Record<Exclude<PamOutcome, { ok: true }>['reason'], string> = {
  wrongPassword: 'The password is wrong for this account.',
  unknownUser: 'The account does not exist on this machine.',
  accountExpired: 'The account has expired.',
  passwordExpired: 'The password has expired and must be changed.',
  accountLocked: 'The account is locked.',
  permissionDenied: 'The account may not sign in here.',
  pamError: 'PAM could not check the account.',
}

type DeliveredCredential = z.infer<typeof DeliveredCredentialSchema>

export interface AgentRunner {
  /** Resolves when the agent stops: asked to, or because the machine was deleted. */
  run(): Promise<'stopped' | 'deleted'>
  stop(): Promise<void>
}

export function createAgentRunner(options: {
  config: AgentConfig
  state: StateStore
  logger: AgentLogger
  hostname: string
  os: string
  /** Checks a password with PAM, off the event loop (a child process in production). */
  checkPassword: (account: string, password: string) => Promise<PamOutcome>
}): AgentRunner {
  const { config, state, logger } = options
  let channel: AgentChannel | undefined
  let watcher: SessionWatcher | undefined
  let finish: ((outcome: 'stopped' | 'deleted') => void) | undefined
  let runCgroups: RunCgroups | undefined
  /** Removes the machine's cgroup of runs as the agent ends, once no run is left in it. */
  const releaseRunCgroups = () => {
    try {
      if (runCgroups) rmdirSync(runCgroups.base)
    } catch {
      // Runs go on, or an earlier run's cgroup would not empty: the next start ends them.
    }
  }
  let sessions: SessionInfo[] = []
  let settings: MachineSettings | undefined
  const since = new Date().toISOString()
  const jwksByIssuer = new Map<string, JWTVerifyGetKey>()
  const keysOf = (issuer: string): JWTVerifyGetKey => {
    let keys = jwksByIssuer.get(issuer)
    if (!keys) {
      keys = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`))
      jwksByIssuer.set(issuer, keys)
    }
    return keys
  }

  /**
   * The policy as the file says now: trust decisions (sign-in, username mapping) follow an
   * edit without a restart. A policy that no longer loads trusts nothing.
   */
  function currentPolicy(): AgentPolicy | undefined {
    try {
      return loadAgentPolicy(config.policyFile).policy
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'agent policy unreadable: trusting nothing')
      return undefined
    }
  }

  /** Connect with sign-in: verify the token and the machine's trust, then map the person. */
  async function testSignIn(
    groupId: string,
    accessToken: string,
    policy: AgentPolicy,
  ): Promise<Omit<AgentConnectionTestResult, 'type' | 'requestId'>> {
    const registration = state.read()
    if (!registration) return { ok: false, reason: 'invalidToken', detail: 'Not registered.' }
    const checked = await verifySignInToken(accessToken, groupId, {
      serverUrl: registration.server,
      memberOf: registration.groupId,
      policy,
      keysOf,
    })
    logger.info(
      { ok: checked.ok, ...(!checked.ok && { reason: checked.reason }) },
      'sign-in token checked',
    )
    if (!checked.ok) return checked
    const mapped = mapUsername(signInUsername(checked.username, policy.join), {
      hostname: options.hostname,
      join: policy.join,
    })
    if (!mapped.ok) return { ok: false, reason: 'usernameNotMapped', detail: mapped.reason }
    return { ok: true, osAccount: mapped.account }
  }

  /**
   * A connection test: open the credential with the target group's key, map the username to an
   * OS account, and check it with PAM (password and account state), as a sign-in would.
   */
  async function testConnection(
    groupId: string,
    credential: DeliveredCredential,
  ): Promise<Omit<AgentConnectionTestResult, 'type' | 'requestId'>> {
    const policy = currentPolicy()
    if (!policy)
      return { ok: false, reason: 'permissionDenied', detail: 'The agent policy is unreadable.' }
    if (credential.kind === 'signIn') return testSignIn(groupId, credential.accessToken, policy)
    const { join } = policy
    const groupKey = state.readKey(`group-${groupId}.key`)?.trim()
    if (!groupKey)
      return {
        ok: false,
        reason: 'secretUnavailable',
        detail: 'This machine does not hold the key of the target group.',
      }
    let opened: { username: string; secret: string }
    try {
      opened = await openCredential(credential, groupKey)
    } catch (error) {
      return {
        ok: false,
        reason: 'secretUnavailable',
        detail: (error as Error).message.slice(0, 1024),
      }
    }
    const mapped = mapUsername(opened.username, { hostname: options.hostname, join })
    if (!mapped.ok) return { ok: false, reason: 'usernameNotMapped', detail: mapped.reason }
    const outcome = await options.checkPassword(mapped.account, opened.secret)
    logger.info(
      { account: mapped.account, ok: outcome.ok, ...(!outcome.ok && { reason: outcome.reason }) },
      'connection tested',
    )
    if (outcome.ok) return { ok: true, osAccount: mapped.account }
    return {
      ok: false,
      reason: outcome.reason,
      osAccount: mapped.account,
      detail: PAM_DETAILS[outcome.reason],
    }
  }

  /** Who a run acts as: the opened credential, or the checked sign-in token, mapped to an account. */
  async function identify(offer: Parameters<RunManager['offer']>[0]): Promise<Identity> {
    const policy = currentPolicy()
    if (!policy)
      return { ok: false, code: 'InvalidPolicy', message: 'The agent policy is unreadable.' }
    if (offer.credential.kind === 'signIn') {
      const checked = await testSignIn(offer.groupId, offer.credential.accessToken, policy)
      if (checked.ok && checked.osAccount) return { ok: true, account: checked.osAccount }
      const code =
        checked.reason === 'machineNotJoined'
          ? 'MachineNotJoined'
          : checked.reason === 'tenantNotAllowlisted'
            ? 'UnallowedTenantForConnectWithSignIn'
            : checked.detail?.includes('ERR_JWT_EXPIRED')
              ? 'PasswordlessTokenExpiry'
              : 'WindowsIdentityIncorrect'
      return { ok: false, code, message: checked.detail ?? 'The sign-in token was refused.' }
    }
    const groupKey = state.readKey(`group-${offer.groupId}.key`)?.trim() ?? ''
    let opened: { username: string; secret: string }
    try {
      opened = await openCredential(offer.credential, groupKey)
    } catch (error) {
      return {
        ok: false,
        code: 'SecretUnavailable',
        message: (error as Error).message.slice(0, 1024),
      }
    }
    const mapped = mapUsername(opened.username, { hostname: options.hostname, join: policy.join })
    if (!mapped.ok) return { ok: false, code: 'WindowsIdentityIncorrect', message: mapped.reason }
    return { ok: true, account: mapped.account, password: opened.secret }
  }

  const writeStatus = (mode: AgentMode, detail?: string) =>
    state.writeStatus({
      mode,
      since,
      pid: process.pid,
      ...(detail && { lastError: detail }),
      sessions,
      ...(settings && { settings }),
    })

  return {
    async run() {
      const registration = state.read()
      if (!registration) throw new AgentError('NotRegistered')
      if (registration.deleted) throw new AgentError('MachineDeleted')
      const identity = state.readKey('identity.pem')
      if (!identity)
        throw new AgentError('NotRegistered', {
          message: 'The machine identity key is missing; register again.',
        })
      const { policy, fromFile } = loadAgentPolicy(config.policyFile)
      if (!fromFile)
        logger.warn(
          { policyFile: config.policyFile },
          'no agent policy file: any tenant is allowed',
        )
      if (policy.enforceOnStart)
        assertTenantAllowed(policy, registration.tenantId, 'RegistrationNoLongerAllowed')

      const provider = (await logindAvailable())
        ? createLogindSessionProvider()
        : createX11SessionProvider({ socketDir: config.x11SocketDir })
      logger.info(
        {
          machineId: registration.machineId,
          server: registration.server,
          sessionSource: provider.name,
        },
        'agent starting',
      )
      writeStatus('starting')

      const outcome = new Promise<'stopped' | 'deleted'>((resolve) => (finish = resolve))
      const assertion = () =>
        signMachineAssertion(identity, registration.machineId, registration.server)
      const cgroups = detectRunCgroups(registration.machineId)
      if ('unavailable' in cgroups)
        logger.warn(
          { reason: cgroups.unavailable },
          'runs are held by their process group alone: processes a flow detaches from it outlive the run',
        )
      else {
        runCgroups = cgroups
        logger.info(
          { cgroups: cgroups.base },
          "each run's processes are held in a cgroup of its own",
        )
        // Runs of an earlier start that it could not end (the agent was killed, say).
        const left = await cgroups.endLeftovers().catch((error: unknown) => {
          logger.warn({ err: error }, 'ending the processes of earlier runs failed')
          return []
        })
        if (left.length > 0) logger.info({ runIds: left }, 'ended what earlier runs left running')
      }
      const runs = createRunManager({
        journal: createRunJournal(config.stateDir, logger),
        executor: createScriptExecutor({
          workDir: config.workDir,
          ...(!('unavailable' in cgroups) && { cgroups }),
          logger,
        }),
        packages: createPackageCache({
          stateDir: config.stateDir,
          server: registration.server,
          assertion,
          logger,
        }),
        logger,
        send: (message) => channel?.send(message) ?? false,
        sessions: () => sessions,
        groupKey: (groupId) => state.readKey(`group-${groupId}.key`)?.trim() || undefined,
        identify,
        checkPassword: async (account, password) => {
          const checked = await options.checkPassword(account, password)
          return checked.ok ? { ok: true } : { ok: false, reason: checked.reason }
        },
      })
      channel = createAgentChannel({
        server: registration.server,
        assertion,
        hello: { agentVersion: AGENT_VERSION, hostname: options.hostname, os: options.os },
        sessions: () => sessions,
        runningRuns: () => runs.running(),
        backoffMaxMs: config.backoffMaxMs,
        logger,
        events: {
          onMode: (mode, detail) => writeStatus(mode, detail),
          onSettings: (groupId, next) => {
            settings = next
            const current = state.read()
            if (current && current.groupId !== groupId) {
              // Removed from (or moved between) groups by an administrator: drop the old key.
              if (current.groupId !== current.standaloneGroupId)
                state.removeKey(`group-${current.groupId}.key`)
              state.update({ groupId })
            }
            logger.info({ groupId, settings: next }, 'settings received')
          },
          onConnectionTest: (request) => testConnection(request.groupId, request.credential),
          onReady: () => runs.resend(),
          onRunOffer: (offer) => {
            void runs
              .offer(offer)
              .catch((error: unknown) =>
                logger.error(
                  { err: (error as Error).message, runId: offer.runId },
                  'run offer failed',
                ),
              )
          },
          onRunCancel: (runId) => runs.cancel(runId),
          onRunFinishedAck: (runId) => runs.acknowledged(runId),
          onDeleted: () => {
            state.update({ deleted: true })
            watcher?.stop()
            releaseRunCgroups()
            writeStatus('deleted')
            finish?.('deleted')
          },
        },
      })
      watcher = createSessionWatcher({
        provider,
        pollMs: config.sessionPollMs,
        onChange: (next) => {
          sessions = next
          logger.info(
            { sessions: next.map((s) => `${s.user}@${s.display ?? s.id}:${s.state}`) },
            'sessions changed',
          )
          channel?.heartbeat()
        },
        onError: (error) =>
          logger.warn({ err: (error as Error).message }, 'session discovery failed'),
      })
      watcher.start()
      channel.start()
      return outcome
    },
    async stop() {
      watcher?.stop()
      await channel?.stop()
      releaseRunCgroups()
      writeStatus('stopped')
      finish?.('stopped')
    },
  }
}
