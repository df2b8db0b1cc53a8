/**
 * The signed-in profile: server, tenant and tokens, kept in `<config dir>/profile.json` with
 * mode 0600 (the directory 0700), as other cloud CLIs keep theirs. The config directory is
 * `DESKLINK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/desklink`, else `~/.config/desklink`.
 *
 * @module
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { CliIo } from '../io.ts'

export interface Profile {
  readonly server: string
  readonly tenant: string
  readonly principalType: 'user' | 'servicePrincipal'
  readonly clientId: string
  readonly accessToken: string
  readonly accessTokenExpiresAt: string
  readonly refreshToken?: string
  /** For service principals signing in with a secret: kept so tokens can be renewed. */
  readonly clientSecret?: string
  /** For service principals signing in with a certificate: path of the private key file. */
  readonly privateKeyFile?: string
}

export function configDir(io: Pick<CliIo, 'env' | 'homeDir'>): string {
  return (
    io.env.DESKLINK_CONFIG_DIR ??
    join(io.env.XDG_CONFIG_HOME ?? join(io.homeDir, '.config'), 'desklink')
  )
}

export function loadProfile(io: Pick<CliIo, 'env' | 'homeDir'>): Profile | undefined {
  const file = join(configDir(io), 'profile.json')
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as Profile
}

export function saveProfile(io: Pick<CliIo, 'env' | 'homeDir'>, profile: Profile): string {
  const dir = configDir(io)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, 'profile.json')
  writeFileSync(file, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  return file
}

export function removeProfile(io: Pick<CliIo, 'env' | 'homeDir'>): boolean {
  const file = join(configDir(io), 'profile.json')
  if (!existsSync(file)) return false
  rmSync(file)
  return true
}
