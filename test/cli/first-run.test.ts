/**
 * The README's first command as a new user meets it, with real processes: `desklink up` in an
 * empty folder, the administrator signs in with the CLI, creates a service principal, the
 * service principal signs in and uses the API, and both tokens verify against the tenant's
 * JWKS. Restarting keeps the data and prints no new password.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { createRemoteJWKSet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { waitFor } from '../support/cli-process.ts'
import { createOsUser, skipReason } from '../support/os-users.ts'

const BIN = resolve('bin/desklink.js')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function desklink(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; stdin?: string },
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

function startUp(
  cwd: string,
): Promise<{ child: ChildProcessWithoutNullStreams; output: () => string; url: string }> {
  const child = spawn(process.execPath, [BIN, 'up', '--port', '0'], {
    cwd,
    env: { ...process.env, DESKLINK_ADMIN_PASSWORD: '' },
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`desklink up did not start:\n${output}`)), 20_000)
    child.stdout.on('data', () => {
      const match = /Desklink is running at (\S+)/.exec(output)
      if (match && output.includes('Stop with Ctrl+C.')) {
        clearTimeout(timer)
        done({ child, output: () => output, url: match[1] })
      }
    })
    child.on('exit', (code) => fail(new Error(`desklink up exited with ${code}:\n${output}`)))
  })
}

function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((done) => {
    child.removeAllListeners('exit')
    child.on('exit', (code) => done(code))
    child.kill('SIGTERM')
  })
}

describe('the README first command, with real processes', () => {
  let cwd: string
  let up: Awaited<ReturnType<typeof startUp>>
  const adminConfig = { DESKLINK_CONFIG_DIR: '' }
  const spConfig = { DESKLINK_CONFIG_DIR: '' }

  beforeAll(async () => {
    if (!existsSync('dist/desklink.mjs'))
      throw new Error('Run `npm run build` first (npm test does).')
    cwd = mkdtempSync(join(tmpdir(), 'desklink-first-run-'))
    adminConfig.DESKLINK_CONFIG_DIR = join(cwd, 'admin-config')
    spConfig.DESKLINK_CONFIG_DIR = join(cwd, 'sp-config')
    up = await startUp(cwd)
  })
  afterAll(async () => {
    if (up.child.exitCode === null) await stop(up.child)
    rmSync(cwd, { recursive: true, force: true })
  })

  let adminPassword = ''
  let spClientId = ''
  let spSecret = ''

  it('starts a server on 127.0.0.1 with SQLite and a 0600 master key under ./.desklink', async () => {
    expect(up.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${up.url}/readyz`)).status).toBe(200)
    expect(existsSync(join(cwd, '.desklink', 'desklink.db'))).toBe(true)
    expect(statSync(join(cwd, '.desklink', 'master.key')).mode & 0o777).toBe(0o600)
    const match = /Administrator password \(shown this once, store it now\): (\S+)/.exec(
      up.output(),
    )
    expect(match).not.toBeNull()
    adminPassword = match![1]!
  })

  it('signs the administrator in with the CLI and shows who it is', async () => {
    const login = await desklink(
      ['login', '--server', up.url, '--username', 'admin', '--password-stdin'],
      { cwd, env: adminConfig, stdin: `${adminPassword}\n` },
    )
    expect(login.stderr).toBe('')
    expect(login.stdout).toContain('Signed in')
    const whoami = await desklink(['whoami', '--json'], { cwd, env: adminConfig })
    expect(JSON.parse(whoami.stdout)).toMatchObject({
      name: 'admin',
      principalType: 'user',
      isTenantAdmin: true,
    })
  })

  it('signs a person in through the browser flow: sign-in page, loopback redirect, code exchange', async () => {
    const env = { ...process.env, DESKLINK_CONFIG_DIR: join(cwd, 'browser-config') }
    const child = spawn(process.execPath, [BIN, 'login', '--server', up.url, '--no-browser'], {
      cwd,
      env,
    })
    let stderr = ''
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    const signInUrl = await new Promise<string>((done) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        const match = /(http:\/\/\S+\/oauth2\/authorize\?\S+)/.exec(stderr)
        if (match) done(match[1])
      })
    })
    const exited = new Promise<number | null>((done) => child.on('exit', done))
    // What a browser does: show the page, post the form, follow the redirect to the CLI.
    const page = await fetch(signInUrl)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('name="password"')
    const url = new URL(signInUrl)
    const form = new URLSearchParams(url.searchParams)
    form.set('username', 'admin')
    form.set('password', adminPassword)
    const posted = await fetch(`${url.origin}${url.pathname}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    })
    expect(posted.status).toBe(302)
    const callback = posted.headers.get('location')!
    expect(callback).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/)
    expect(await (await fetch(callback)).text()).toContain('Signed in')
    expect(await exited).toBe(0)
    expect(stdout).toContain('Signed in to')
  })

  it('runs a local agent registered as this machine, connected to the server', async () => {
    await waitFor(async () => {
      const list = await desklink(['machines', 'list', '--json'], { cwd, env: adminConfig })
      const machines = JSON.parse(list.stdout) as { name: string; status: string }[]
      return machines.length === 1 && machines[0].status === 'connected'
    }, 'the local agent to connect')
    // Where desklink up runs, the agent's status is the local agent's.
    const status = await desklink(['agent', 'status'], { cwd, env: adminConfig })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stderr).toContain('The local agent of desklink up')
    expect(status.stdout).toMatch(/^registration:\s+active$/m)
    expect(statSync(join(cwd, '.desklink', 'agent', 'keys', 'identity.pem')).mode & 0o777).toBe(
      0o600,
    )
  })

  it.skipIf(skipReason(['useradd', 'chpasswd', 'setpriv']) !== undefined)(
    'runs the sample flow through a connection with one command: outputs, run owner, OS account',
    async () => {
      expect(up.output()).toContain("sample:   desktop flow 'hello-desklink'")
      const account = createOsUser('dlfirst', 'First-run-password-8')
      try {
        // As the README says: the machine by name, the environment left to its default.
        const machine = (
          JSON.parse(
            (await desklink(['machines', 'list', '--json'], { cwd, env: adminConfig })).stdout,
          ) as { name: string }[]
        )[0].name
        const create = (password: string) =>
          desklink(
            [
              'connections',
              'create',
              'my-account',
              '--machine',
              machine,
              '--username',
              account.name,
            ],
            { cwd, env: adminConfig, stdin: `${password}\n` },
          )
        // A wrong password: the connection is kept with its error, and the error says what next.
        const wrong = await create('not-the-password')
        expect(wrong.code).toBe(1)
        expect(wrong.stdout).toMatch(/status:\s+Error/)
        expect(wrong.stderr).toContain("The connection 'my-account' is saved with status Error")
        expect(wrong.stderr).toContain('--password-stdin')
        const fixed = await desklink(['connections', 'update', 'my-account', '--password-stdin'], {
          cwd,
          env: adminConfig,
          stdin: 'First-run-password-8\n',
        })
        expect(fixed.code, fixed.stderr).toBe(0)
        expect(fixed.stdout).toMatch(/status:\s+Connected/)
        const run = await desklink(['run', 'hello-desklink', '--connection', 'my-account'], {
          cwd,
          env: adminConfig,
        })
        expect(run.code, run.stderr).toBe(0)
        expect(run.stdout).toMatch(/status:\s+Succeeded/)
        expect(run.stdout).toContain('"greeting":"Hello, world"')
        expect(run.stdout).toContain(`"user":"${account.name}"`)
        expect(run.stdout).toMatch(new RegExp(`machineCredentialUser:\\s+${account.name}`))
        expect(run.stdout).toMatch(/runOwner:\s+user admin \([0-9a-f-]{36}\)/)
        expect(run.stdout).toMatch(/machine:\s+\S+ \([0-9a-f-]{36}\)/)

        // A flow of one's own: a folder with a manifest, pushed, then run with an input.
        const flowDir = join(cwd, 'my-flow')
        mkdirSync(flowDir)
        writeFileSync(
          join(flowDir, 'desklink-flow.json'),
          JSON.stringify({
            name: 'double',
            runtime: 'node',
            entry: 'main.js',
            inputs: [{ name: 'n', type: 'number', required: true }],
            outputs: [{ name: 'doubled', type: 'number' }],
          }),
        )
        writeFileSync(
          join(flowDir, 'main.js'),
          "const fs = require('fs')\nconst { n } = JSON.parse(fs.readFileSync(process.env.DESKLINK_INPUTS, 'utf8'))\nfs.writeFileSync(process.env.DESKLINK_OUTPUTS, JSON.stringify({ doubled: n * 2 }))\n",
        )
        const pushed = await desklink(['flows', 'push', 'my-flow', '--json'], {
          cwd,
          env: adminConfig,
        })
        expect(pushed.code, pushed.stderr).toBe(0)
        expect(JSON.parse(pushed.stdout)).toMatchObject({ name: 'double', version: 1 })
        const doubled = await desklink(
          ['run', 'double', '--connection', 'my-account', '--input', 'n=21', '--json'],
          { cwd, env: adminConfig },
        )
        expect(doubled.code, doubled.stderr).toBe(0)
        expect(JSON.parse(doubled.stdout)).toMatchObject({
          status: 'Succeeded',
          outputs: { doubled: 42 },
          machineCredentialUser: account.name,
        })
      } finally {
        account.remove()
      }
    },
  )

  it('creates a built-in credential from standard input and never prints the secret', async () => {
    const secret = 'canary-cli-secret-5d1e'
    const environment = (
      JSON.parse((await desklink(['env', 'list', '--json'], { cwd, env: adminConfig })).stdout) as {
        id: string
      }[]
    )[0].id
    const created = await desklink(
      [
        'credentials',
        'create',
        'cli-cred',
        '--environment',
        environment,
        '--usage',
        'flow',
        '--username',
        'svc',
        '--secret-stdin',
        '--json',
      ],
      { cwd, env: adminConfig, stdin: `${secret}\n` },
    )
    expect(created.code).toBe(0)
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: 'cli-cred',
      secret: { store: 'builtin' },
    })
    const listed = await desklink(['credentials', 'list', '--environment', environment, '--json'], {
      cwd,
      env: adminConfig,
    })
    const tested = await desklink(
      ['credentials', 'test', JSON.parse(created.stdout).id, '--json'],
      { cwd, env: adminConfig },
    )
    expect(JSON.parse(tested.stdout)).toEqual({ readable: true, source: 'builtin' })
    for (const output of [created.stdout, created.stderr, listed.stdout, tested.stdout])
      expect(output).not.toContain(secret)
  })

  it('exits 2 for a usage error, naming what is wrong, and 0 for help', async () => {
    const missing = await desklink(['run', 'some-flow'], { cwd, env: adminConfig })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("required option '--connection <id|name>' not specified")
    const help = await desklink(['run', '--help'], { cwd, env: adminConfig })
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Exit status: 0 when the run succeeded')
  })

  it('refuses a wrong password with a clear error and exit code', async () => {
    const login = await desklink(
      ['login', '--server', up.url, '--username', 'admin', '--password-stdin'],
      { cwd, env: { DESKLINK_CONFIG_DIR: join(cwd, 'wrong') }, stdin: 'wrong-password\n' },
    )
    expect(login.code).toBe(1)
    expect(login.stderr).toContain('InvalidCredentials')
  })

  it('creates a service principal that signs in with client credentials and uses the API', async () => {
    const created = await desklink(['sp', 'create', 'ci-bot', '--json'], { cwd, env: adminConfig })
    expect(created.code).toBe(0)
    const sp = JSON.parse(created.stdout) as { clientId: string; secret: { clientSecret: string } }
    spClientId = sp.clientId
    spSecret = sp.secret.clientSecret
    const login = await desklink(
      ['login', '--server', up.url, '--client-id', spClientId, '--client-secret-stdin'],
      { cwd, env: spConfig, stdin: spSecret },
    )
    expect(login.stdout).toContain('as ci-bot (service principal')
    const users = await desklink(['users', 'list', '--json'], { cwd, env: spConfig })
    expect(users.code).toBe(0)
    expect((JSON.parse(users.stdout) as { username: string }[]).map((u) => u.username)).toContain(
      'admin',
    )
  })

  it('issues tokens that verify against the tenant JWKS', async () => {
    const jwks = createRemoteJWKSet(new URL(`${up.url}/t/default/.well-known/jwks.json`))
    for (const dir of [adminConfig.DESKLINK_CONFIG_DIR, spConfig.DESKLINK_CONFIG_DIR]) {
      const profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8')) as {
        accessToken: string
      }
      expect(statSync(join(dir, 'profile.json')).mode & 0o777).toBe(0o600)
      const { payload } = await jwtVerify(profile.accessToken, jwks, {
        issuer: `${up.url}/t/default`,
        audience: 'desklink-api',
      })
      expect(payload.scope).toBe('api')
    }
  })

  it('stops cleanly and starts again with the same data and no new password', async () => {
    expect(await stop(up.child)).toBe(0)
    up = await startUp(cwd)
    expect(up.output()).not.toContain('Administrator password')
    const login = await desklink(
      ['login', '--server', up.url, '--username', 'admin', '--password-stdin'],
      { cwd, env: adminConfig, stdin: adminPassword },
    )
    expect(login.stdout).toContain('Signed in')
    const machines = async () =>
      JSON.parse(
        (await desklink(['machines', 'list', '--json'], { cwd, env: adminConfig })).stdout,
      ) as { status: string }[]
    await waitFor(
      async () => (await machines())[0]?.status === 'connected',
      'the same local agent to connect again',
    )
    expect(await machines()).toHaveLength(1)
  })
})
