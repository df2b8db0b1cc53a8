import { describe, expect, it } from 'vitest'

import { type Refusal, waitsOnlyForSession } from './placement.ts'

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
