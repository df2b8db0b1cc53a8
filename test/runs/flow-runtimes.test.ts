/**
 * Flows of each runtime that needs more than `/bin/sh`, run as a real OS account: a python flow
 * (python3 found on the PATH flows run with), and an exec flow whose entry the package does not
 * mark executable, which the machine makes executable in the workspace (the manifest names it
 * as the program to run). Without, it failed with exit code 126 on every machine. And a flow
 * that needs a display, which fails at once without one.
 */
import { randomUUID } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import type { FlowManifest } from '@desklink/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createScriptExecutor } from '../../packages/agent/src/runs/flow-executor.ts'
import { createOsUser, missingTools, type OsUser, skipReason } from '../support/os-users.ts'
import { runFlowPackage } from '../support/shell-flows.ts'

const reason = skipReason(['useradd', 'setpriv'])
if (reason) process.stderr.write(`flow runtimes suite skipped: ${reason}\n`)

/** A flow of `runtime` whose entry, not marked executable, is `script`. */
const flowOf = (
  runtime: FlowManifest['runtime'],
  entry: string,
  script: string,
  needsDisplay = false,
) => ({
  manifest: {
    name: `${runtime}-flow`,
    description: '',
    runtime,
    entry,
    inputs: [],
    outputs: [
      { name: 'user', type: 'text' as const, required: true, sensitive: false, description: '' },
    ],
    needsDisplay,
  },
  files: [{ path: entry, executable: false, contentBase64: btoa(script) }],
})

describe.skipIf(reason !== undefined)('flows of each runtime', () => {
  let user: OsUser
  let base: string

  beforeAll(() => {
    user = createOsUser('dlrt')
    base = mkdtempSync(join(tmpdir(), 'desklink-runtimes-'))
    chmodSync(base, 0o711)
  })
  afterAll(() => {
    user?.remove()
    if (base) rmSync(base, { recursive: true, force: true })
  })

  const runFlow = (
    pkg: ReturnType<typeof flowOf>,
    display: string | null = null,
    flowPath?: string,
  ) =>
    runFlowPackage(
      createScriptExecutor({
        workDir: join(base, 'runs'),
        ...(flowPath !== undefined && { flowPath }),
      }),
      user.name,
      pkg,
      { runId: randomUUID(), display },
    )

  it.skipIf(missingTools(['python3']).length > 0)('runs a python flow as the account', async () => {
    const result = await runFlow(
      flowOf(
        'python',
        'main.py',
        [
          'import getpass, json, os',
          'with open(os.environ["DESKLINK_OUTPUTS"], "w") as f:',
          '    json.dump({"user": getpass.getuser()}, f)',
        ].join('\n'),
      ),
    )
    expect(result).toMatchObject({ status: 'Succeeded', outputs: { user: user.name } })
  })

  it('runs an exec flow whose entry the package does not mark executable', async () => {
    const result = await runFlow(
      flowOf(
        'exec',
        'bin/run',
        '#!/bin/sh\nprintf \'{"user":"%s"}\' "$(id -un)" > "$DESKLINK_OUTPUTS"\n',
      ),
    )
    expect(result).toMatchObject({ status: 'Succeeded', outputs: { user: user.name } })
  })

  it('fails a flow that needs a display when the run has none, and runs it with one', async () => {
    const script = 'printf \'{"user":"%s"}\' "$(id -un)" > "$DESKLINK_OUTPUTS"\n'
    const blind = await runFlow(flowOf('shell', 'main.sh', script, true))
    expect(blind).toMatchObject({ status: 'Failed', error: { code: 'DisplayUnavailable' } })
    const seen = await runFlow(flowOf('shell', 'main.sh', script, true), ':7')
    expect(seen).toMatchObject({ status: 'Succeeded', outputs: { user: user.name } })
  })

  it('fails a python run at once, saying what to install, where python3 is not on the PATH flows run with', async () => {
    const noPython = join(base, 'empty-bin')
    mkdirSync(noPython, { recursive: true })
    const result = await runFlow(flowOf('python', 'main.py', 'print(1)'), null, noPython)
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'RuntimeUnavailable' } })
    expect(result.error?.message).toContain('python3')
  })
})
