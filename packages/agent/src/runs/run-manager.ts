/**
 * The machine's side of runs: takes offers (checks them against its own view of sessions, the
 * identity and its policy first), journals and starts them exactly once, reports their end
 * until the server acknowledges it, and stops them on cancel.
 *
 * An offer this machine cannot take now (the user's session is not as the run needs) is
 * rejected with the reference's code, and the server tries elsewhere. A run whose identity does
 * not hold (wrong password, unknown account, a refused sign-in token) is accepted and failed
 * at once: no other machine of the group would do better.
 *
 * @module
 */

import {
  type AgentMessage,
  type AgentRunFinished,
  bestSessionOf,
  NO_INPUTS,
  openWithGroupKey,
  type RunCode,
  type ServerRunOffer,
  type SessionInfo,
  unattendedSessionRefusal,
} from '@desklink/protocol'

import { passwdEntry } from '../accounts/passwd-entry.ts'
import type { AgentLogger } from '../agent-logger.ts'
import type { FlowExecutor, OsAccount } from './flow-executor.ts'
import type { FlowPackage } from './flow-packages.ts'
import { groupIsAccounts } from './process-groups.ts'
import { currentBootId, type RunJournal } from './run-journal.ts'
import { secretForms } from './secret-masking.ts'

/** Who the run acts as, or why it cannot. */
export type Identity =
  { ok: true; account: string; password?: string } | { ok: false; code: RunCode; message: string }

export interface RunManagerDeps {
  readonly journal: RunJournal
  readonly executor: FlowExecutor
  readonly packages: { get(contentHash: string): Promise<FlowPackage> }
  readonly logger: AgentLogger
  readonly send: (message: AgentMessage) => boolean
  readonly sessions: () => readonly SessionInfo[]
  readonly groupKey: (groupId: string) => string | undefined
  /** Opens the offer's credential (or checks its sign-in token) and maps it to an account. */
  readonly identify: (offer: ServerRunOffer) => Promise<Identity>
  readonly checkPassword: (
    account: string,
    password: string,
  ) => Promise<{ ok: boolean; reason?: string }>
  readonly passwdFile?: string
}

/** The OS account `name`, as the system looks it up (or from `passwdFile`, for tests). */
export function accountInfo(name: string, passwdFile?: string): OsAccount | undefined {
  const entry = passwdEntry(name, passwdFile)
  return entry && { name, uid: entry.uid, gid: entry.gid, home: entry.home }
}

export function createRunManager(deps: RunManagerDeps) {
  const { journal, logger } = deps
  const active = new Map<string, AbortController>()

  function report(result: AgentRunFinished) {
    journal.finish(result)
    active.delete(result.runId)
    deps.send(result)
    logger.info(
      { runId: result.runId, status: result.status, code: result.error?.code },
      'run ended',
    )
  }

  const failNow = (
    runId: string,
    startedAt: string,
    code: RunCode,
    message: string,
    osAccount: string | null = null,
  ) =>
    report({
      type: 'runFinished',
      runId,
      status: 'Failed',
      exitCode: null,
      outputs: null,
      error: { code, message },
      osAccount,
      startedAt,
      finishedAt: new Date().toISOString(),
    })

  async function execute(
    offer: ServerRunOffer,
    pkg: FlowPackage,
    identity: Extract<Identity, { ok: true }>,
    inputs: Record<string, unknown>,
    startedAt: string,
    display: string | null,
  ) {
    const controller = active.get(offer.runId) ?? new AbortController()
    active.set(offer.runId, controller)
    const account = accountInfo(identity.account, deps.passwdFile)
    if (!account)
      return failNow(
        offer.runId,
        startedAt,
        'WindowsIdentityIncorrect',
        `No account '${identity.account}' exists on this machine.`,
      )
    const secrets = offer.sensitive.flatMap((name) => secretForms(inputs[name]))
    const result = await deps.executor.run({
      runId: offer.runId,
      pkg,
      inputs,
      secrets: identity.password ? [...secrets, identity.password] : secrets,
      sensitiveOutputs: offer.sensitive,
      account,
      display,
      timeoutSeconds: offer.timeoutSeconds,
      signal: controller.signal,
      onStarted: (pgid) =>
        journal.update(offer.runId, { pgid, bootId: currentBootId(), osAccount: account.name }),
    })
    report({
      type: 'runFinished',
      runId: offer.runId,
      ...result,
      osAccount: account.name,
      startedAt,
      finishedAt: new Date().toISOString(),
    })
  }

  async function start(
    offer: ServerRunOffer,
    identity: Identity,
    groupKey: string,
    pkg: FlowPackage,
    startedAt: string,
    display: string | null,
    controller: AbortController,
  ): Promise<void> {
    if (!identity.ok) return failNow(offer.runId, startedAt, identity.code, identity.message)
    if (controller.signal.aborted)
      return report({
        type: 'runFinished',
        runId: offer.runId,
        status: 'Cancelled',
        exitCode: null,
        outputs: null,
        error: null,
        osAccount: identity.account,
        startedAt,
        finishedAt: new Date().toISOString(),
      })
    // A connection's password is checked for every run that has one, attended ones too: a
    // user's open session proves nothing about the password stored in the connection.
    if (offer.runMode === 'unattended' || identity.password !== undefined) {
      const checked = await deps.checkPassword(identity.account, identity.password ?? '')
      if (!checked.ok)
        return failNow(
          offer.runId,
          startedAt,
          'WindowsIdentityIncorrect',
          `The credentials provided with the request are invalid (${checked.reason ?? 'refused'}).`,
          identity.account,
        )
    }
    let inputs: Record<string, unknown> = {}
    try {
      // Nothing is sealed for a run without inputs.
      if (offer.sealedInputs !== NO_INPUTS)
        inputs = JSON.parse(
          await openWithGroupKey(groupKey, offer.sealedInputs, `run:${offer.runId}`),
        ) as Record<string, unknown>
    } catch {
      return failNow(
        offer.runId,
        startedAt,
        'SecretUnavailable',
        'The run inputs could not be opened with the group key.',
      )
    }
    await execute(offer, pkg, identity, inputs, startedAt, display)
  }

  return {
    /** Ids of runs going on here (offered ones too), for heartbeats: they renew the leases. */
    running: (): string[] => [...active.keys()],

    async offer(offer: ServerRunOffer): Promise<void> {
      // An offer being looked at already (a duplicate crossed it): the first one answers.
      if (active.has(offer.runId)) return
      const known = journal.read(offer.runId)
      if (known) {
        // Offered again (the server restarted, or a message crossed): never start twice.
        if (known.state === 'finished' && known.result) deps.send(known.result)
        else deps.send({ type: 'runAccepted', runId: offer.runId })
        return
      }
      // Tracked from the start: heartbeats list it (its lease holds while the package
      // downloads) and a cancel that comes meanwhile is not lost.
      const controller = new AbortController()
      active.set(offer.runId, controller)
      const reject = (code: RunCode, reason: string) => {
        active.delete(offer.runId)
        logger.info({ runId: offer.runId, code }, 'run offer rejected')
        deps.send({ type: 'runRejected', runId: offer.runId, code, reason })
      }
      const groupKey = deps.groupKey(offer.groupId)
      if (!groupKey)
        return reject(
          'SecretUnavailable',
          'This machine does not hold the key of the target group.',
        )
      const identity = await deps.identify(offer)
      // Session rules, as this machine sees them now (reference §3.4–3.5), on the user's best
      // session: one with which an attended run can go, if the user has several.
      const session = identity.ok ? bestSessionOf(deps.sessions(), identity.account) : undefined
      if (identity.ok && offer.runMode === 'attended') {
        if (!session)
          return reject(
            'AttendedUserNotLoggedIn',
            `${identity.account} is not signed in on this machine.`,
          )
        if (session.state !== 'active')
          return reject(
            'AttendedUserSessionNotActive',
            `The session of ${identity.account} is ${session.state}.`,
          )
      }
      // Reuse sessions lends the run only an active session (reference §3.4), as the server has it.
      const reusable = offer.reuseSessions && session?.state === 'active'
      if (identity.ok && offer.runMode === 'unattended' && session && !reusable) {
        return reject(
          unattendedSessionRefusal(session.state),
          `${identity.account} already has a ${session.state} session on this machine.`,
        )
      }
      // The package comes first: a machine that cannot get it does not take the run.
      let pkg: FlowPackage
      try {
        pkg = await deps.packages.get(offer.flow.contentHash)
      } catch (error) {
        return reject(
          'PackageUnavailable',
          `The flow package could not be fetched: ${(error as Error).message}`,
        )
      }
      const startedAt = new Date().toISOString()
      journal.accept(offer.runId, startedAt)
      deps.send({ type: 'runAccepted', runId: offer.runId })
      logger.info({ runId: offer.runId, runMode: offer.runMode }, 'run accepted')
      // From here on the run is the machine's: whatever goes wrong ends it with a report.
      try {
        await start(offer, identity, groupKey, pkg, startedAt, session?.display ?? null, controller)
      } catch (error) {
        failNow(offer.runId, startedAt, 'AgentError', (error as Error).message.slice(0, 1024))
      }
    },

    cancel(runId: string): void {
      active.get(runId)?.abort()
    },

    acknowledged(runId: string): void {
      journal.remove(runId)
    },

    /**
     * Connected again: results the server may not have are sent first; runs the journal says
     * were going on but this process did not start (the agent restarted) are ended as failed.
     */
    resend(): void {
      for (const entry of journal.all()) {
        if (entry.state === 'finished' && entry.result) {
          deps.send(entry.result)
        } else if (!active.has(entry.runId)) {
          const account = entry.osAccount
            ? accountInfo(entry.osAccount, deps.passwdFile)
            : undefined
          // Only on the same boot (after a reboot that group id may be anyone's), and only while
          // the group is still the run account's alone (its id may have been reused since).
          if (
            entry.pgid &&
            entry.bootId !== undefined &&
            entry.bootId === currentBootId() &&
            account &&
            groupIsAccounts(entry.pgid, account.uid)
          ) {
            try {
              process.kill(-entry.pgid, 'SIGKILL')
            } catch {
              // Nothing left of it.
            }
          }
          failNow(
            entry.runId,
            entry.startedAt,
            'AgentRestarted',
            'The agent restarted while the run was going on; the run was stopped.',
            entry.osAccount ?? null,
          )
          // Its workspace goes too: nobody else would remove it.
          if (account)
            deps.executor
              .discard(entry.runId, account)
              .catch((error: unknown) =>
                logger.warn({ err: error, runId: entry.runId }, 'removing a workspace failed'),
              )
        }
      }
    },
  }
}

export type RunManager = ReturnType<typeof createRunManager>
