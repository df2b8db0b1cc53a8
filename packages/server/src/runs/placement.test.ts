import { describe, expect, it } from 'vitest'

import {
  judge,
  type MachinePicture,
  type Refusal,
  refusedOnlyForSession,
  waitsOnlyForSession,
} from './placement.ts'

const refusal = (machineId: string, code: string): Refusal => ({
  machineId,
  machineName: machineId,
  code,
  reason: code,
})

describe('extended queue prioritization passes a run only when it waits for its session', () => {
  it('passes a run every available machine turns down for its user session', () => {
    expect(waitsOnlyForSession([refusal('a', 'AttendedUserNotLoggedIn')], 'attended')).toBe(true)
    expect(
      waitsOnlyForSession(
        [refusal('a', 'UnattendedUserSessionLocked'), refusal('b', 'NoListenerConnected')],
        'unattended',
      ),
    ).toBe(true)
    // Unattended, a machine whose slots are all busy is not available: it does not count.
    expect(
      waitsOnlyForSession(
        [
          refusal('a', 'SessionExistsForTheUserWhenUnattended'),
          refusal('b', 'UIFlowAlreadyRunning'),
        ],
        'unattended',
      ),
    ).toBe(true)
    // Attended, it is the user's session that is busy with another run.
    expect(waitsOnlyForSession([refusal('a', 'UIFlowAlreadyRunning')], 'attended')).toBe(true)
  })

  it('holds the queue behind a run no machine is available for', () => {
    expect(waitsOnlyForSession([refusal('a', 'UIFlowAlreadyRunning')], 'unattended')).toBe(false)
    expect(
      waitsOnlyForSession(
        [refusal('a', 'MachineInMaintenance'), refusal('b', 'NoListenerConnected')],
        'attended',
      ),
    ).toBe(false)
    expect(waitsOnlyForSession([], 'attended')).toBe(false)
  })

  it('holds the queue behind a run a machine turned down for another reason', () => {
    expect(
      waitsOnlyForSession(
        [refusal('a', 'AttendedUserNotLoggedIn'), refusal('b', 'SecretUnavailable')],
        'attended',
      ),
    ).toBe(false)
  })
})

describe('without extended prioritization, a run refused only for its session fails at once', () => {
  it('fails one every machine refuses for its user session', () => {
    expect(
      refusedOnlyForSession([
        refusal('a', 'AttendedUserNotLoggedIn'),
        refusal('b', 'AttendedUserSessionNotActive'),
      ]),
    ).toBe(true)
  })

  it('keeps one waiting that a machine may yet take by itself', () => {
    for (const other of [
      'NoListenerConnected',
      'MachineInMaintenance',
      'UIFlowAlreadyRunning',
      'PackageUnavailable',
    ])
      expect(
        refusedOnlyForSession([refusal('a', 'AttendedUserNotLoggedIn'), refusal('b', other)]),
      ).toBe(false)
    expect(refusedOnlyForSession([])).toBe(false)
  })
})

describe('reuse sessions lends an unattended run only an active session of its user', () => {
  const machine = (state: 'active' | 'locked' | 'disconnected'): MachinePicture => ({
    machineId: 'm',
    machineName: 'm',
    connected: true,
    settings: {
      maintenanceMode: false,
      slots: 1,
      reuseSessions: true,
      extendedQueuePrioritization: false,
    },
    sessions: [{ id: 'x11:1', user: 'alice', uid: 1000, display: ':1', state, source: 'x11' }],
    unattendedRunning: 0,
    attendedUsers: [],
    unattendedUsers: [],
  })
  const run = { runMode: 'unattended', osUser: 'alice' } as const

  it('takes the run into an active session', () => {
    expect(judge(machine('active'), run)).toEqual({ ok: true })
  })

  it('refuses it while the session holds another run, and an attended run while it holds one', () => {
    const busy = { ...machine('active'), unattendedUsers: ['alice'] }
    expect(judge(busy, run)).toMatchObject({ code: 'UIFlowAlreadyRunning' })
    expect(judge(busy, { runMode: 'attended', osUser: 'alice' })).toMatchObject({
      code: 'UIFlowAlreadyRunning',
    })
    // Without reuse sessions, unattended runs of the account run beside its session.
    const apart = { ...busy, settings: { ...busy.settings, reuseSessions: false } }
    expect(judge(apart, { runMode: 'attended', osUser: 'alice' })).toEqual({ ok: true })
  })

  it('refuses it while the session is locked or disconnected', () => {
    expect(judge(machine('locked'), run)).toMatchObject({ code: 'UnattendedUserSessionLocked' })
    expect(judge(machine('disconnected'), run)).toMatchObject({
      code: 'UnattendedUserSessionDisconnected',
    })
  })
})
