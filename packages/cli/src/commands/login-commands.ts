/**
 * `desklink login`, `desklink logout`, `desklink whoami`.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

import type { Command } from '@commander-js/extra-typings'
import type { Me } from '@desklink/protocol'

import { apiClientFor } from '../client/api-client.ts'
import {
  CLI_CLIENT_ID,
  clientCredentialsWithKey,
  clientCredentialsWithSecret,
  discover,
  signInWithBrowser,
  signInWithPassword,
  type TokenSet,
} from '../client/oauth-client.ts'
import { loadProfile, type Profile, removeProfile, saveProfile } from '../client/profile-store.ts'
import { CliError, type CliIo } from '../io.ts'
import { printObject } from '../output/print.ts'
import { wholeNumber } from './option-values.ts'

export const DEFAULT_SERVER = 'http://127.0.0.1:8470'

export function tryOpenBrowser(url: string): void {
  try {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true })
    child.on('error', () => undefined)
    child.unref()
  } catch {
    // No browser opener here: the URL is printed for the user to open.
  }
}

export function registerLoginCommands(program: Command, io: CliIo): void {
  program
    .command('login')
    .summary('Sign in to a Desklink server (browser, password on stdin, or service principal)')
    .description(
      'Sign in to a Desklink server.\n\n' +
        'People sign in in a browser (authorization code with PKCE; the CLI listens on a loopback port). ' +
        'Without a browser, pass --username and the password on stdin (--password-stdin). ' +
        'Service principals use --client-id with --client-secret-stdin (or DESKLINK_CLIENT_SECRET), ' +
        'or --certificate-key FILE (private_key_jwt).',
    )
    .option('--server <url>', `server URL (env DESKLINK_SERVER)`)
    .option('--tenant <slug>', 'tenant to sign in to', 'default')
    .option('--username <name>', 'sign in as this user without a browser; password read from stdin')
    .option('--password-stdin', 'read the password from standard input (with --username)')
    .option('--client-id <id>', 'sign in as the service principal with this client id')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option(
      '--certificate-key <file>',
      'private key (PEM) of a certificate registered on the service principal',
    )
    .option('--no-browser', 'print the sign-in URL instead of opening a browser')
    .option('--timeout <seconds>', 'how long to wait for the browser sign-in', '300')
    .option('--json', 'print the result as JSON')
    .action(async (options) => {
      const server = (
        options.server ??
        io.env.DESKLINK_SERVER ??
        loadProfile(io)?.server ??
        DEFAULT_SERVER
      ).replace(/\/$/, '')
      if (options.passwordStdin && !options.username)
        throw new CliError(
          'InvalidOption',
          '--password-stdin signs in with a password: add --username <name>.',
          { exitCode: 2 },
        )
      const metadata = await discover(io.fetch, server, options.tenant)
      let tokens: TokenSet
      let profileExtras: Partial<Profile> = {}
      let principalType: Profile['principalType'] = 'user'
      let clientId = CLI_CLIENT_ID
      if (options.clientId) {
        principalType = 'servicePrincipal'
        clientId = options.clientId
        if (options.certificateKey) {
          const keyFile = resolve(io.cwd, options.certificateKey)
          tokens = await clientCredentialsWithKey(
            io.fetch,
            metadata,
            clientId,
            readFileSync(keyFile, 'utf8'),
          )
          profileExtras = { privateKeyFile: keyFile }
        } else {
          const secret = options.clientSecretStdin
            ? (await io.readStdin()).trim()
            : io.env.DESKLINK_CLIENT_SECRET
          if (!secret) {
            throw new CliError(
              'MissingSecret',
              'Pass the client secret on stdin with --client-secret-stdin, set DESKLINK_CLIENT_SECRET, or use --certificate-key.',
              { exitCode: 2 },
            )
          }
          tokens = await clientCredentialsWithSecret(io.fetch, metadata, clientId, secret)
          profileExtras = { clientSecret: secret }
        }
      } else if (options.username) {
        if (!options.passwordStdin) {
          throw new CliError(
            'MissingPassword',
            'With --username, pass the password on stdin and add --password-stdin.',
            { exitCode: 2 },
          )
        }
        const password = (await io.readStdin()).replace(/\r?\n$/, '')
        tokens = await signInWithPassword({
          fetchFn: io.fetch,
          metadata,
          username: options.username,
          password,
        })
      } else {
        tokens = await signInWithBrowser({
          fetchFn: io.fetch,
          metadata,
          timeoutMs: wholeNumber('--timeout', options.timeout) * 1000,
          showUrl: (url) => {
            io.err(
              `Open this address in a browser to sign in:\n\n  ${url}\n\n` +
                `Waiting for the sign-in (${options.timeout} s)… Without a browser, sign in with ` +
                '--username and the password on standard input (--password-stdin).\n',
            )
            if (options.browser) tryOpenBrowser(url)
          },
        })
      }
      const profile: Profile = {
        server,
        tenant: options.tenant,
        principalType,
        clientId,
        accessToken: tokens.accessToken,
        accessTokenExpiresAt: tokens.expiresAt,
        ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
        ...profileExtras,
      }
      saveProfile(io, profile)
      const me = await apiClientFor(io).request<Me>('GET', '/me')
      if (options.json)
        printObject(
          io,
          { json: true },
          {
            signedIn: true,
            server,
            tenant: me.tenant.slug,
            principalType,
            id: me.id,
            name: me.name,
          },
        )
      else
        io.out(
          `Signed in to ${server} as ${me.name} (${principalType === 'user' ? 'user' : 'service principal'}, tenant ${me.tenant.slug}).\n`,
        )
    })

  program
    .command('logout')
    .description('Forget the signed-in profile on this computer.')
    .option('--json', 'print the result as JSON')
    .action((options) => {
      const removed = removeProfile(io)
      if (options.json) printObject(io, { json: true }, { signedOut: removed })
      else io.out(removed ? 'Signed out.\n' : 'Not signed in.\n')
    })

  program
    .command('whoami')
    .description('Show who you are signed in as, in which tenant, with which roles.')
    .option('--json', 'print the result as JSON')
    .action(async (options) => {
      const client = apiClientFor(io)
      const me = await client.request<Me>('GET', '/me')
      if (options.json) {
        printObject(io, { json: true }, { server: client.profile.server, ...me })
        return
      }
      printObject(
        io,
        {},
        {
          server: client.profile.server,
          name: me.name,
          type: me.principalType,
          id: me.id,
          tenant: `${me.tenant.slug} (${me.tenant.id})`,
          tenantAdmin: me.isTenantAdmin ? 'yes' : 'no',
          platformAdmin: me.isPlatformAdmin ? 'yes' : 'no',
          roles: me.roles.map((r) => `${r.role}@${r.environmentName}`).join(', ') || '(none)',
        },
      )
    })
}
