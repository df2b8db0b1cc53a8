/**
 * The flow package cache on the machine, with a real server and a real agent: a cached package
 * that a write cut short, or whose content no longer matches its hash, is fetched again and
 * replaces the cached copy, and the run goes on as if nothing had happened. Before, such a copy
 * broke that flow version on that machine for good: each run was turned down
 * (`PackageUnavailable`), or ran what the damaged copy held.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { assertBuilt } from '../support/cli-process.ts'
import { skipReason } from '../support/os-users.ts'
import { type RunMachine, startRunMachine } from '../support/run-machine.ts'
import { pushFlow, waitForRun, waitingWith } from '../support/runs.ts'
import { api, startTestServer, type TestServer } from '../support/test-server.ts'

const reason = skipReason(['useradd', 'chpasswd', 'setpriv'])
if (reason) process.stderr.write(`flow package cache suite skipped: ${reason}\n`)

describe.skipIf(reason !== undefined)('the flow package cache on the machine', () => {
  let t: TestServer
  let m: RunMachine
  let flow: { id: string; contentHash: string }
  /** The machine's cached copy of the flow's package, and what it holds when whole. */
  let cached: string
  let whole: string

  beforeAll(async () => {
    assertBuilt()
    t = await startTestServer('sqlite', { DESKLINK_AGENT_HEARTBEAT_MS: '500' })
    m = await startRunMachine(() => t.url)
    flow = await pushFlow(t.url, m.token, m.environmentId, {
      name: 'cached',
      script: 'printf \'{"said":"hello"}\' > "$DESKLINK_OUTPUTS"',
      outputs: [{ name: 'said', type: 'text', required: true }],
    })
    cached = join(m.home.env.DESKLINK_AGENT_STATE_DIR, 'packages', `${flow.contentHash}.json`)
    // The first run fills the cache.
    expect(await runIt()).toMatchObject({ status: 'Succeeded', outputs: { said: 'hello' } })
    whole = readFileSync(cached, 'utf8')
  })
  afterAll(async () => {
    await m?.remove()
    await t?.close()
  })

  /** Runs the flow; answers the run once it ended, or once the machine turned it down. */
  const runIt = async () => {
    const started = await api(t.url, m.token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId: m.connectionId,
    })
    expect(started.status).toBe(202)
    return waitForRun(
      t.url,
      m.token,
      started.body.id as string,
      (run) =>
        ['Succeeded', 'Failed', 'Cancelled'].includes(run.status) ||
        waitingWith('PackageUnavailable')(run),
    )
  }

  it('fetches again a cached package that a write cut short, and runs it', async () => {
    writeFileSync(cached, whole.slice(0, Math.floor(whole.length / 2)))

    expect(await runIt()).toMatchObject({ status: 'Succeeded', outputs: { said: 'hello' } })
    expect(readFileSync(cached, 'utf8')).toBe(whole)
  })

  it('fetches again a cached package whose content does not match its hash, and runs it', async () => {
    const changed = JSON.parse(whole) as { files: { contentBase64: string }[] }
    for (const file of changed.files) file.contentBase64 = btoa('exit 7\n')
    writeFileSync(cached, JSON.stringify(changed))

    expect(await runIt()).toMatchObject({ status: 'Succeeded', outputs: { said: 'hello' } })
    expect(readFileSync(cached, 'utf8')).toBe(whole)
  })
})
