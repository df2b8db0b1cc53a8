import { join, resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

import { resolveServerConfig } from './server-config.ts'

describe('resolveServerConfig', () => {
  it('defaults to SQLite under ./.desklink on 127.0.0.1:8470', () => {
    const config = resolveServerConfig({})
    expect(config.dataDir).toBe(resolve('.desklink'))
    expect(config.databaseUrl).toBe(join(resolve('.desklink'), 'desklink.db'))
    expect(config.host).toBe('127.0.0.1')
    expect(config.port).toBe(8470)
    expect(config.masterKeyFile).toBe(join(resolve('.desklink'), 'master.key'))
  })

  it('lets flags win over the environment', () => {
    const config = resolveServerConfig(
      { DESKLINK_PORT: '9000', DESKLINK_HOST: '0.0.0.0' },
      { port: '9100' },
    )
    expect(config.port).toBe(9100)
    expect(config.host).toBe('0.0.0.0')
  })

  it('keeps a PostgreSQL URL as it is', () => {
    const url = 'postgres://u:p@db:5432/desklink'
    expect(resolveServerConfig({ DESKLINK_DATABASE_URL: url }).databaseUrl).toBe(url)
  })

  it('returns a frozen object', () => {
    expect(Object.isFrozen(resolveServerConfig({}))).toBe(true)
  })

  it.each([
    [{ DESKLINK_PORT: 'eighty' }, /DESKLINK_PORT/],
    [{ DESKLINK_LOG_LEVEL: 'loud' }, /DESKLINK_LOG_LEVEL/],
    [{ DESKLINK_PUBLIC_URL: 'ftp://x' }, /DESKLINK_PUBLIC_URL/],
    [{ DESKLINK_ADMIN_PASSWORD: 'short' }, /at least 12/],
    [{ DESKLINK_CREATE_MASTER_KEY: 'maybe' }, /true or false/],
    [{ DESKLINK_MAX_BODY_BYTES: '10' }, /DESKLINK_MAX_BODY_BYTES/],
  ])('refuses %o with a TypeError naming the setting', (env, message) => {
    expect(() => resolveServerConfig(env)).toThrow(TypeError)
    expect(() => resolveServerConfig(env)).toThrow(message)
  })
})
