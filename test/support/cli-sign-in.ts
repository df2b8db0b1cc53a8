/**
 * The CLI signed in to a test server as its administrator, in a configuration directory of its
 * own (`DESKLINK_CONFIG_DIR`), for tests that drive the CLI against it.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { desklink } from './cli-process.ts'
import { ADMIN_PASSWORD } from './test-server.ts'

/** Signs the CLI in to `url`; the configuration directory it keeps the sign-in in. */
export async function signInCli(url: string): Promise<string> {
  const configDir = mkdtempSync(join(tmpdir(), 'desklink-cli-'))
  const login = await desklink(
    ['login', '--server', url, '--username', 'admin', '--password-stdin'],
    {
      env: { DESKLINK_CONFIG_DIR: configDir },
      stdin: ADMIN_PASSWORD,
    },
  )
  if (login.code !== 0) throw new Error(`the CLI did not sign in: ${login.stderr}`)
  return configDir
}
