/**
 * Maps the username of a connection to an OS account on this machine, per the machine's join
 * policy. Accepted forms (reference §1.8): bare `user`, `.\user`, `local\user`,
 * `<MACHINE>\user` (local accounts); `DOMAIN\user` and `user@domain` (directory accounts, only on
 * a machine joined to that domain). Every refusal says why.
 *
 * @module
 */
import type { AgentPolicy } from '../policy/agent-policy.ts'
import { passwdEntry } from './passwd-entry.ts'

export type MappedAccount =
  { ok: true; account: string; uid: number } | { ok: false; reason: string }

const ACCOUNT = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i

export function mapUsername(
  username: string,
  context: { hostname: string; join: AgentPolicy['join']; passwdFile?: string },
): MappedAccount {
  let account: string
  let domain: string | undefined
  const backslash = /^([^\\@]+)\\([^\\@]+)$/.exec(username)
  const upn = /^([^\\@]+)@([^\\@]+)$/.exec(username)
  if (backslash) {
    const prefix = backslash[1].toLowerCase()
    account = backslash[2]!
    const host = context.hostname.split('.')[0].toLowerCase()
    if (prefix !== '.' && prefix !== 'local' && prefix !== host) domain = backslash[1]!
  } else if (upn) {
    account = upn[1]!
    domain = upn[2]!
  } else {
    account = username
  }
  if (domain !== undefined) {
    const joined = context.join.type === 'domain' ? context.join.domain.toLowerCase() : undefined
    const matches =
      joined !== undefined &&
      (joined === domain.toLowerCase() || joined.split('.')[0] === domain.toLowerCase())
    if (!matches) {
      return {
        ok: false,
        reason: `The machine is not joined to domain '${domain}'; use a local account (MACHINE\\user, .\\user or user).`,
      }
    }
  }
  if (!ACCOUNT.test(account))
    return { ok: false, reason: `'${account}' is not a valid account name on this machine.` }
  const uid = passwdEntry(account, context.passwdFile)?.uid
  if (uid === undefined)
    return { ok: false, reason: `No account '${account}' exists on this machine.` }
  if (uid === 0) return { ok: false, reason: 'Connections cannot run as root.' }
  return { ok: true, account, uid }
}
