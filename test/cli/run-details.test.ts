/**
 * What `desklink run` sends and shows, as the built `desklink` command against a real server
 * whose test machine plays the agent: inputs typed as the flow declares them, the run's caller,
 * connection and owners, times and durations, a connection's last use and inventory, and the
 * run mode a sign-in connection needs when none is given.
 */
import { rmSync } from 'node:fs'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { groupAudience } from '../../packages/protocol/src/index.ts'
import {
  type ChannelTestbed,
  startChannelTestbed,
  succeededMessage,
} from '../support/channel-testbed.ts'
import { assertBuilt, desklink } from '../support/cli-process.ts'
import { signInCli } from '../support/cli-sign-in.ts'
import { pushFlow } from '../support/runs.ts'
import { ADMIN_PASSWORD, api, authorize, pkcePair, REDIRECT_URI } from '../support/test-server.ts'

// Each step starts the real `desklink` process, about half a second each.
const SEVERAL_COMMANDS = { timeout: 60_000 }
const ID = '[0-9a-f-]{36}'

describe('desklink run: what it sends and what it shows', () => {
  let bed: ChannelTestbed
  let configDir: string
  let adminId: string

  const cli = (args: string[]) => desklink(args, { env: { DESKLINK_CONFIG_DIR: configDir } })
  const json = async (args: string[]) => {
    const ran = await cli([...args, '--json'])
    expect(ran.code, ran.stderr).toBe(0)
    return JSON.parse(ran.stdout) as Record<string, unknown>
  }
  const maintenance = async (maintenanceMode: boolean) => {
    const changed = await api(bed.t.url, bed.token, 'PATCH', `/machines/${bed.machine.machineId}`, {
      settings: { maintenanceMode },
    })
    expect(changed.status, changed.text).toBe(200)
  }

  beforeAll(async () => {
    assertBuilt()
    bed = await startChannelTestbed('sqlite')
    adminId = (await api(bed.t.url, bed.token, 'GET', '/me')).body.id
    configDir = await signInCli(bed.t.url)
  })
  afterAll(async () => {
    await bed?.close()
    if (configDir) rmSync(configDir, { recursive: true, force: true })
  })

  it('converts each --input to the type the flow declares for it', SEVERAL_COMMANDS, async () => {
    await pushFlow(bed.t.url, bed.token, bed.environmentId, {
      name: 'typed',
      script: 'true',
      inputs: [
        { name: 'zip', type: 'text' },
        { name: 'times', type: 'number' },
        { name: 'dryRun', type: 'boolean' },
        { name: 'filter', type: 'json' },
        { name: 'apiKey', type: 'number', sensitive: true },
      ],
    })
    await maintenance(true)
    try {
      const run = ['run', 'typed', '--connection', 'picky', '--no-wait']
      // Digits declared as text stay text; the rest is parsed as declared.
      const queued = await json([
        ...run,
        ...['--input', 'zip=90210', '--input', 'times=-2.5', '--input', 'dryRun=TRUE'],
        ...['--input', 'filter={"ids":[1,2]}'],
      ])
      expect(queued.inputs).toEqual({
        zip: '90210',
        times: -2.5,
        dryRun: true,
        filter: { ids: [1, 2] },
      })
      await json(['runs', 'cancel', queued.id as string])

      // Not of the declared type: a usage error naming the input and its type, nothing sent.
      const before = await api(
        bed.t.url,
        bed.token,
        'GET',
        `/environments/${bed.environmentId}/runs`,
      )
      const notNumber = await cli([...run, '--input', 'times=3x'])
      expect(notNumber.code).toBe(2)
      expect(notNumber.stderr).toContain(
        "Error (InvalidOption): --input times takes a number (such as 42, -1.5 or 1e3), not '3x': " +
          "the flow declares 'times' of type number.",
      )
      const notBoolean = await cli([...run, '--input', 'dryRun=yes please'])
      expect(notBoolean.code).toBe(2)
      expect(notBoolean.stderr).toContain('--input dryRun takes true or false')
      const notJson = await cli([...run, '--input', 'filter={ids}', '--json'])
      expect(notJson.code).toBe(2)
      expect(JSON.parse(notJson.stderr).error).toMatchObject({
        code: 'InvalidOption',
        details: { input: 'filter', type: 'json' },
      })
      // A sensitive value is not repeated in the message.
      const secret = await cli([...run, '--input', 'apiKey=s3cr3t-value'])
      expect(secret.code).toBe(2)
      expect(secret.stderr).toContain('--input apiKey takes a number')
      expect(secret.stderr).not.toContain('s3cr3t-value')
      const after = await api(
        bed.t.url,
        bed.token,
        'GET',
        `/environments/${bed.environmentId}/runs`,
      )
      expect(after.body.items).toHaveLength(before.body.items.length)

      // A name the flow does not declare goes as given: the server's coded refusal names it.
      const undeclared = await cli([...run, '--input', 'zipp=90210'])
      expect(undeclared.code).toBe(1)
      expect(undeclared.stderr).toContain('Error (InvalidFlowInputs)')
      expect(undeclared.stderr).toMatch(/^ {2}zipp: not an input of this flow$/m)
    } finally {
      await maintenance(false)
    }
  })

  it(
    'shows who started a run, through which connection, and how long it waited and ran',
    SEVERAL_COMMANDS,
    async () => {
      const waiter = cli([
        'run',
        'picky',
        '--connection',
        'picky',
        '--parent-run-id',
        'workflow-9',
        '--timeout',
        '900',
      ])
      // The machine takes the run, starts it a moment later and ends it.
      const offer = await bed.channel.next('runOffer', 10_000)
      await new Promise((resolve) => setTimeout(resolve, 50))
      bed.ws.send(JSON.stringify({ type: 'runAccepted', runId: offer.runId }))
      await new Promise((resolve) => setTimeout(resolve, 50))
      bed.ws.send(succeededMessage(offer.runId))
      const ran = await waiter
      expect(ran.code, ran.stderr).toBe(0)
      const shown = (key: string) => new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(ran.stdout)?.[1]
      expect(shown('status')).toBe('Succeeded')
      expect(shown('caller')).toMatch(new RegExp(`^user admin \\(${adminId}\\)$`))
      expect(shown('connection')).toBe(`picky (${bed.connectionId})`)
      expect(shown('connectionOwner')).toBe(`user admin (${adminId})`)
      expect(shown('runOwner')).toBe(`user admin (${adminId})`)
      expect(shown('targetGroup')).toBe(
        `machine picky's own group (${bed.machine.standaloneGroupId})`,
      )
      expect(shown('machine')).toBe(`picky (${bed.machine.machineId})`)
      expect(shown('parentRunId')).toBe('workflow-9')
      expect(shown('timeoutSeconds')).toBe('900')
      const run = (await api(bed.t.url, bed.token, 'GET', `/runs/${offer.runId as string}`)).body
      expect(shown('requestedAt')).toBe(run.requestedAt)
      expect(shown('startedAt')).toBe(run.startedAt)
      expect(shown('finishedAt')).toBe(run.finishedAt)
      expect(shown('executionMs')).toBe(String(run.executionDurationMs))
      expect(shown('totalMs')).toBe(String(run.totalDurationMs))
      expect(shown('queuedMs')).toBe(String(run.totalDurationMs - run.executionDurationMs))

      // The same for `runs show`; a run that never started has no start and no execution.
      await maintenance(true)
      try {
        const queued = await json(['run', 'picky', '--connection', 'picky', '--no-wait'])
        const cancelled = await cli(['runs', 'cancel', queued.id as string])
        expect(cancelled.stdout).toMatch(new RegExp(`^caller:\\s+user admin \\(${ID}\\)$`, 'm'))
        // No machine took it: its target found among the environment's machines.
        expect(cancelled.stdout).toMatch(/^targetGroup:\s+machine picky's own group \(/m)
        expect(cancelled.stdout).toMatch(/^finishedAt:\s+\S+$/m)
        expect(cancelled.stdout).toMatch(/^totalMs:\s+\d+$/m)
        expect(cancelled.stdout).not.toMatch(/^(startedAt|executionMs|queuedMs|parentRunId):/m)
        const again = await cli(['runs', 'show', queued.id as string])
        expect(again.stdout).toMatch(
          new RegExp(`^connection:\\s+picky \\(${bed.connectionId}\\)$`, 'm'),
        )
      } finally {
        await maintenance(false)
      }
    },
  )

  it("shows a connection's last use and what ran through it", SEVERAL_COMMANDS, async () => {
    const used = (await api(bed.t.url, bed.token, 'GET', `/connections/${bed.connectionId}`)).body
    expect(used.lastUsedAt).not.toBeNull()
    const shown = await cli(['connections', 'show', 'picky'])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`^lastUsedAt:\\s+${used.lastUsedAt}$`, 'm'))
    const listed = await cli(['connections', 'list'])
    expect(listed.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+USERNAME\s+OSACCOUNT\s+LASTUSEDAT$/m)
    expect(listed.stdout).toMatch(
      new RegExp(
        `^${bed.connectionId}\\s+picky\\s+Connected\\s+runner\\s+runner\\s+${used.lastUsedAt}$`,
        'm',
      ),
    )

    const inventory = await cli(['connections', 'inventory', 'picky'])
    expect(inventory.code, inventory.stderr).toBe(0)
    expect(inventory.stdout).toMatch(/^FLOW\s+MACHINE\s+RUNOWNER\s+RUNS\s+LASTRUNAT$/m)
    // The run that went to the machine, and the one cancelled in its queue, on none.
    expect(inventory.stdout).toMatch(
      new RegExp(
        `^picky \\(${bed.flow.id}\\)\\s+picky \\(${bed.machine.machineId}\\)\\s+user admin \\(${adminId}\\)\\s+\\d+\\s+\\S+$`,
        'm',
      ),
    )
    const asJson = (await json(['connections', 'inventory', bed.connectionId])) as unknown as {
      flowName: string
      machineId: string | null
    }[]
    expect(asJson).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ flowName: 'picky', machineId: bed.machine.machineId }),
      ]),
    )
  })

  it(
    'runs attended through a sign-in connection unless --mode says otherwise',
    SEVERAL_COMMANDS,
    async () => {
      const { verifier, challenge } = pkcePair()
      const code = await authorize(
        bed.t.url,
        'default',
        'admin',
        ADMIN_PASSWORD,
        challenge,
        'desktopflows.execute offline_access',
        groupAudience(bed.machine.standaloneGroupId),
      )
      const signedIn = await api(
        bed.t.url,
        bed.token,
        'POST',
        `/environments/${bed.environmentId}/connections`,
        {
          name: 'admin-sign-in',
          target: { machineId: bed.machine.machineId },
          signIn: { code, codeVerifier: verifier, redirectUri: REDIRECT_URI },
        },
      )
      expect(signedIn.status, signedIn.text).toBe(201)
      await maintenance(true)
      try {
        const attended = await json(['run', 'picky', '--connection', 'admin-sign-in', '--no-wait'])
        expect(attended.runMode).toBe('attended')
        await json(['runs', 'cancel', attended.id as string])
        // Given, a mode is sent as it is: the server says why it cannot be.
        const told = await cli([
          'run',
          'picky',
          '--connection',
          'admin-sign-in',
          '--mode',
          'unattended',
          '--no-wait',
        ])
        expect(told.code).toBe(1)
        expect(told.stderr).toContain('Error (RunModeNotAllowedForConnection)')
        // Any other connection: unattended.
        const other = await json(['run', 'picky', '--connection', 'picky', '--no-wait'])
        expect(other.runMode).toBe('unattended')
        await json(['runs', 'cancel', other.id as string])
      } finally {
        await maintenance(false)
      }
    },
  )

  it('says in --help how --input and --mode follow the flow and the connection', async () => {
    const help = await cli(['run', '--help'])
    expect(help.code).toBe(0)
    // As words: the help wraps to the terminal's width.
    const words = help.stdout.replace(/\s+/g, ' ')
    expect(words).toContain('--input <name=value> an input (repeat for more), of the type the flow')
    expect(words).toContain(
      '--mode <mode> attended or unattended (default: attended through a sign-in connection',
    )
    expect(words).not.toContain('(default: "unattended")')
  })
})
