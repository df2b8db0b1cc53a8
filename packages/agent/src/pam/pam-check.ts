/**
 * Checks an OS account's password and account state with PAM, the way a login would:
 * `pam_authenticate` then `pam_acct_mgmt` (expired accounts and passwords fail there), through
 * libpam via koffi (no compiler needed). PAM calls block for seconds on a wrong password
 * (pam_faildelay), so the agent runs this in a child process (`desklink agent pam-check`),
 * never on its event loop. Needs root to check other users' passwords.
 *
 * @module
 */
import { readFileSync } from 'node:fs'

import koffi from 'koffi'

/** Why an account cannot sign in; each maps to a distinct message in the connection status. */
export type PamOutcome =
  | { ok: true }
  | {
      ok: false
      reason:
        | 'wrongPassword'
        | 'unknownUser'
        | 'accountExpired'
        | 'passwordExpired'
        | 'accountLocked'
        | 'permissionDenied'
        | 'pamError'
      pamCode?: number
    }

const PAM_PROMPT_ECHO_OFF = 1
const PAM_PROMPT_ECHO_ON = 2
const REASONS: Record<number, Exclude<PamOutcome, { ok: true }>['reason']> = {
  6: 'permissionDenied', // PAM_PERM_DENIED
  7: 'wrongPassword', // PAM_AUTH_ERR
  9: 'pamError', // PAM_AUTHINFO_UNAVAIL
  10: 'unknownUser', // PAM_USER_UNKNOWN
  11: 'accountLocked', // PAM_MAXTRIES
  12: 'passwordExpired', // PAM_NEW_AUTHTOK_REQD
  13: 'accountExpired', // PAM_ACCT_EXPIRED
}

/**
 * PAM answers a locked (`passwd -l`: the hash starts with '!') or expired (shadow expiry date
 * passed) account with the same "auth error" as a wrong password; the shadow entry, readable by
 * root, tells them apart.
 */
function shadowState(
  user: string,
  shadowFile: string,
): 'accountLocked' | 'accountExpired' | undefined {
  try {
    const fields = readFileSync(shadowFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`))
      ?.split(':')
    if (!fields) return undefined
    if (fields[1]?.startsWith('!')) return 'accountLocked'
    const expiresDay = fields[7] ? Number(fields[7]) : undefined
    if (
      expiresDay !== undefined &&
      Number.isFinite(expiresDay) &&
      expiresDay * 86_400_000 <= Date.now()
    )
      return 'accountExpired'
    return undefined
  } catch {
    return undefined
  }
}

export function pamCheck(
  service: string,
  user: string,
  password: string,
  shadowFile = '/etc/shadow',
): PamOutcome {
  const libpam = koffi.load('libpam.so.0')
  const libc = koffi.load('libc.so.6')
  const pamMessage = koffi.struct('pam_message', { msg_style: 'int', msg: 'const char *' })
  const pamResponse = koffi.struct('pam_response', { resp: 'char *', resp_retcode: 'int' })
  const conversation = koffi.proto(
    'int pam_conv_fn(int num_msg, const pam_message **msg, _Out_ pam_response **resp, void *appdata)',
  )
  // Declared by name for the pam_start signature below.
  koffi.struct('pam_conv', { conv: koffi.pointer(conversation), appdata_ptr: 'void *' })
  const pamStart = libpam.func(
    'int pam_start(const char *service, const char *user, const pam_conv *conv, _Out_ void **pamh)',
  )
  const pamAuthenticate = libpam.func('int pam_authenticate(void *pamh, int flags)')
  const pamAcctMgmt = libpam.func('int pam_acct_mgmt(void *pamh, int flags)')
  const pamEnd = libpam.func('int pam_end(void *pamh, int status)')
  const calloc = libc.func('void *calloc(size_t n, size_t size)')
  const strdup = libc.func('void *strdup(const char *s)')

  // PAM frees the responses, so they are allocated with libc, not by JavaScript.
  const answer = koffi.register((count: number, messages: unknown, responses: unknown) => {
    const array = calloc(count, koffi.sizeof(pamResponse)) as unknown
    for (let i = 0; i < count; i++) {
      const pointer = koffi.decode(
        messages,
        i * koffi.sizeof('void *'),
        koffi.pointer(pamMessage),
      ) as unknown
      const message = koffi.decode(pointer, pamMessage) as { msg_style: number }
      if (message.msg_style === PAM_PROMPT_ECHO_OFF || message.msg_style === PAM_PROMPT_ECHO_ON) {
        const copy = strdup(password) as unknown
        koffi.encode(array, i * koffi.sizeof(pamResponse), pamResponse, {
          resp: copy,
          resp_retcode: 0,
        })
      }
    }
    koffi.encode(responses, 'void *', array)
    return 0
  }, koffi.pointer(conversation))
  const handle: unknown[] = [null]
  try {
    const started = pamStart(service, user, { conv: answer, appdata_ptr: null }, handle) as number
    if (started !== 0) return { ok: false, reason: 'pamError', pamCode: started }
    const authenticated = pamAuthenticate(handle[0], 0) as number
    const account = authenticated === 0 ? (pamAcctMgmt(handle[0], 0) as number) : authenticated
    pamEnd(handle[0], account)
    if (account === 0) return { ok: true }
    const state = account === 7 ? shadowState(user, shadowFile) : undefined
    if (state) return { ok: false, reason: state, pamCode: account }
    return { ok: false, reason: REASONS[account] ?? 'pamError', pamCode: account }
  } finally {
    koffi.unregister(answer)
  }
}
