/**
 * Which machine of a target can take a run now (reference §3.4–3.5), and if none, why not,
 * machine by machine. Pure: the dispatcher gathers the live picture and acts on the verdict.
 *
 * - every run: the machine is connected and not in maintenance;
 * - attended: the connection's OS user has an active, unlocked session there, with no other
 *   attended run in it;
 * - unattended: a free slot, and no session of that user (any state) unless the machine reuses
 *   sessions and that session is active.
 *
 * @module
 */
import {
  bestSessionOf,
  type MachineSettings,
  type RunCode,
  type SessionInfo,
  unattendedSessionRefusal,
} from '@desklink/protocol'

export interface MachinePicture {
  readonly machineId: string
  readonly machineName: string
  readonly connected: boolean
  readonly settings: MachineSettings
  readonly sessions: readonly SessionInfo[]
  readonly unattendedRunning: number
  /** OS users with an attended run going on this machine. */
  readonly attendedUsers: readonly string[]
  /** OS users with an unattended run going on this machine (one each per run). */
  readonly unattendedUsers: readonly string[]
}

export interface RunNeeds {
  readonly runMode: 'attended' | 'unattended'
  /** The OS account the run will use, when known. */
  readonly osUser: string | null
}

export interface Refusal {
  readonly machineId: string
  readonly machineName: string
  readonly code: string
  readonly reason: string
}

export type Verdict = { ok: true } | { ok: false; code: RunCode; reason: string }

/**
 * Whether the user's session on the machine holds a run already: an attended one, or, where the
 * machine reuses sessions, an unattended one (it went into that session). A session takes one
 * run at a time (reference §3.5).
 */
function sessionBusy(machine: MachinePicture, user: string): boolean {
  return (
    machine.attendedUsers.includes(user) ||
    (machine.settings.reuseSessions && machine.unattendedUsers.includes(user))
  )
}

export function judge(machine: MachinePicture, run: RunNeeds): Verdict {
  if (!machine.connected)
    return { ok: false, code: 'NoListenerConnected', reason: 'The machine is offline.' }
  if (machine.settings.maintenanceMode)
    return {
      ok: false,
      code: 'MachineInMaintenance',
      reason: 'The machine is in maintenance mode.',
    }
  const user = run.osUser
  // The user's best session, as the machine picks it (a console one over an SSH one, say).
  const session = user === null ? undefined : bestSessionOf(machine.sessions, user)
  if (run.runMode === 'attended') {
    if (!session)
      return {
        ok: false,
        code: 'AttendedUserNotLoggedIn',
        reason: `${user ?? 'The connection user'} is not signed in on the machine.`,
      }
    if (session.state !== 'active')
      return {
        ok: false,
        code: 'AttendedUserSessionNotActive',
        reason: `The session of ${session.user} is ${session.state}.`,
      }
    if (sessionBusy(machine, session.user))
      return {
        ok: false,
        code: 'UIFlowAlreadyRunning',
        reason: `A run is already going on in the session of ${session.user}.`,
      }
    return { ok: true }
  }
  if (machine.unattendedRunning >= machine.settings.slots)
    return {
      ok: false,
      code: 'UIFlowAlreadyRunning',
      reason: `All ${machine.settings.slots} unattended slot(s) are busy.`,
    }
  // Reuse sessions lends the run the user's session only while it is active and unlocked
  // (reference §3.4): a locked or disconnected one is as much in the way as without it.
  if (session && !(machine.settings.reuseSessions && session.state === 'active')) {
    return {
      ok: false,
      code: unattendedSessionRefusal(session.state),
      reason: `${session.user} already has a ${session.state} session on the machine.`,
    }
  }
  if (session && sessionBusy(machine, session.user))
    return {
      ok: false,
      code: 'UIFlowAlreadyRunning',
      reason: `A run is already going on in the session of ${session.user}.`,
    }
  return { ok: true }
}

/** The first machine that can take the run, or every machine's refusal. */
export function place(
  machines: readonly MachinePicture[],
  run: RunNeeds,
): { machine: MachinePicture } | { refusals: Refusal[] } {
  const refusals: Refusal[] = []
  // Least loaded first, so a group spreads its unattended runs.
  const ordered = [...machines].sort((a, b) => a.unattendedRunning - b.unattendedRunning)
  for (const machine of ordered) {
    const verdict = judge(machine, run)
    if (verdict.ok) return { machine }
    refusals.push({
      machineId: machine.machineId,
      machineName: machine.machineName,
      code: verdict.code,
      reason: verdict.reason,
    })
  }
  return { refusals }
}

/** Refusals that say the run's user has no usable session on the machine (reference §3.4). */
const SESSION_REFUSALS = new Set([
  'AttendedUserNotLoggedIn',
  'AttendedUserSessionNotActive',
  'SessionExistsForTheUserWhenUnattended',
  'UnattendedUserSessionLocked',
  'UnattendedUserSessionDisconnected',
])
/** Refusals of a machine that could take no run of this mode now, whatever its user. */
const UNAVAILABLE_REFUSALS = new Set(['NoListenerConnected', 'MachineInMaintenance'])

/**
 * Whether a run that could not be placed waits only for its user's session: extended queue
 * prioritization moves past such a run, and past nothing else (reference §3.3). Machines that
 * could take no run (offline, in maintenance, every unattended slot busy) do not count; at
 * least one must have turned it down for the session. Any other refusal (a machine that turned
 * the offer down, say) holds the queue as without extended prioritization.
 */
export function waitsOnlyForSession(
  refusals: readonly Refusal[],
  runMode: RunNeeds['runMode'],
): boolean {
  // UIFlowAlreadyRunning: for an attended run, its user's session is busy with another run;
  // for an unattended one, the machine's slots are.
  const forSession = (code: string) =>
    SESSION_REFUSALS.has(code) || (runMode === 'attended' && code === 'UIFlowAlreadyRunning')
  const unavailable = (code: string) =>
    UNAVAILABLE_REFUSALS.has(code) || (runMode === 'unattended' && code === 'UIFlowAlreadyRunning')
  return (
    refusals.some((r) => forSession(r.code)) &&
    refusals.every((r) => forSession(r.code) || unavailable(r.code))
  )
}

/**
 * Whether every machine turned the run down for its user's session alone: none is offline, in
 * maintenance, busy or refused the offer, any of which may change by itself. Without extended
 * prioritization such a run fails at once (reference §3.4, step 4) rather than hold up its
 * queue until it times out; with it, it waits while the queue moves past it.
 */
export function refusedOnlyForSession(refusals: readonly Refusal[]): boolean {
  return refusals.length > 0 && refusals.every((r) => SESSION_REFUSALS.has(r.code))
}

/**
 * Each machine's verdict on a queued run no pass has looked at (it waits behind the head of
 * its queue): its refusal, or, where the machine could take it, that the head goes first.
 * Without a run ahead, a machine that could take it says nothing: the next pass places it.
 */
export function refusalsBehind(
  machines: readonly MachinePicture[],
  run: RunNeeds,
  head: { readonly id: string } | undefined,
): Refusal[] {
  return machines.flatMap((machine) => {
    const verdict = judge(machine, run)
    if (verdict.ok && !head) return []
    return {
      machineId: machine.machineId,
      machineName: machine.machineName,
      ...(verdict.ok
        ? {
            code: 'BlockedByQueueHead',
            reason: `The machine could take the run, but run ${head?.id} is ahead of it in the queue and goes first.`,
          }
        : { code: verdict.code, reason: verdict.reason }),
    }
  })
}
