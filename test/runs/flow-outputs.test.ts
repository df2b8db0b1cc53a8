/**
 * A flow's outputs as the machine reports them, run as a real OS account: checked against the
 * outputs its manifest declares, by the rules the server checks inputs with. A flow that exits
 * 0 without a required output, or with one not of its declared type, fails with
 * `InvalidFlowOutputs` naming the output (not its value); outputs it does not declare are
 * dropped; an outputs file over 1 MiB is refused. Sensitive values (sensitive inputs and
 * outputs, the connection's password) are masked inside plain outputs as in stderr, so that
 * they never reach the server.
 */
import { randomUUID } from 'node:crypto'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import type { FlowParameter } from '@desklink/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createScriptExecutor } from '../../packages/agent/src/runs/flow-executor.ts'
import { secretForms } from '../../packages/agent/src/runs/secret-masking.ts'
import { createOsUser, type OsUser, skipReason } from '../support/os-users.ts'
import { runShellFlow } from '../support/shell-flows.ts'

const reason = skipReason(['useradd', 'setpriv'])
if (reason) process.stderr.write(`flow outputs suite skipped: ${reason}\n`)

/** A declared output (or input): text, optional, not sensitive unless said. */
const parameter = (name: string, more: Partial<FlowParameter> = {}): FlowParameter => ({
  name,
  type: 'text',
  required: false,
  sensitive: false,
  description: '',
  ...more,
})

describe.skipIf(reason !== undefined)("a flow's outputs", () => {
  let user: OsUser
  let base: string

  beforeAll(() => {
    user = createOsUser('dlout')
    base = mkdtempSync(join(tmpdir(), 'desklink-outputs-'))
    chmodSync(base, 0o711)
  })
  afterAll(() => {
    user?.remove()
    if (base) rmSync(base, { recursive: true, force: true })
  })

  /** Runs `script` (shell) as the test account, with `outputs` declared. */
  const runFlow = (
    script: string,
    outputs: FlowParameter[],
    run: { inputs?: Record<string, unknown>; secrets?: string[]; sensitive?: string[] } = {},
  ) =>
    runShellFlow(createScriptExecutor({ workDir: join(base, 'runs') }), user.name, {
      runId: randomUUID(),
      script,
      outputs,
      ...(run.inputs && { inputs: run.inputs }),
      ...(run.secrets && { secrets: run.secrets }),
      ...(run.sensitive && { sensitiveOutputs: run.sensitive }),
    })
  const writing = (json: string) => `cat > "$DESKLINK_OUTPUTS" <<'EOF'\n${json}\nEOF\n`

  it('fails a flow that exits 0 without a required output, naming it', async () => {
    const result = await runFlow(writing('{"other": "x"}'), [
      parameter('count', { type: 'number', required: true }),
      parameter('other'),
    ])
    expect(result).toMatchObject({
      status: 'Failed',
      exitCode: 0,
      outputs: null,
      error: { code: 'InvalidFlowOutputs' },
    })
    expect(result.error?.message).toContain("'count' is required")
  })

  it('fails a flow that exits 0 without writing outputs at all, when one is required', async () => {
    const result = await runFlow('exit 0\n', [parameter('count', { required: true })])
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'InvalidFlowOutputs' } })
    expect(result.error?.message).toContain("'count' is required")
  })

  it('fails a flow that writes an output of another type than declared, naming it but not its value', async () => {
    const result = await runFlow(writing('{"count": "twelve-as-text", "done": true}'), [
      parameter('count', { type: 'number' }),
      parameter('done', { type: 'boolean' }),
    ])
    expect(result).toMatchObject({
      status: 'Failed',
      outputs: null,
      error: { code: 'InvalidFlowOutputs' },
    })
    expect(result.error?.message).toContain("'count' must be of type number")
    expect(result.error?.message).not.toContain('twelve-as-text')
  })

  it('keeps the declared outputs of a flow that succeeds and drops the others', async () => {
    const result = await runFlow(
      writing('{"count": 3, "done": true, "data": {"a": [1]}, "undeclared": "x"}'),
      [
        parameter('count', { type: 'number', required: true }),
        parameter('done', { type: 'boolean' }),
        parameter('data', { type: 'json' }),
      ],
    )
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
    expect(result.outputs).toEqual({ count: 3, done: true, data: { a: [1] } })
  })

  it('refuses an outputs file larger than 1 MiB', async () => {
    const result = await runFlow(
      'head -c 1048577 /dev/zero | tr "\\0" " " > "$DESKLINK_OUTPUTS"\n',
      [],
    )
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'InvalidFlowOutputs' } })
    expect(result.error?.message).toContain('larger than 1 MiB')
  })

  it('masks sensitive inputs, sensitive outputs and the password inside plain outputs', async () => {
    const token = 'canary-input-token-7'
    const password = 'Canary-Password-9'
    const outputKey = 'canary-output-key-3'
    const result = await runFlow(
      [
        'token=$(sed -e \'s/.*"token":"\\([^"]*\\)".*/\\1/\' "$DESKLINK_INPUTS")',
        `printf '{"note":"token=%s password=%s","echo":"%s","key":"%s","deep":{"list":["%s",42]},"total":1234}' "$token" "${password}" "${outputKey}" "${outputKey}" "$token" > "$DESKLINK_OUTPUTS"`,
      ].join('\n'),
      [
        parameter('note'),
        parameter('echo'),
        parameter('key', { sensitive: true }),
        parameter('deep', { type: 'json' }),
        parameter('total', { type: 'number' }),
      ],
      {
        inputs: { token, pin: 1234 },
        secrets: [...secretForms(token), ...secretForms(1234), password],
        sensitive: ['token', 'pin', 'key'],
      },
    )
    expect(result).toMatchObject({ status: 'Succeeded', error: null })
    expect(result.outputs).toEqual({
      note: 'token=*** password=***',
      echo: '***',
      key: '***',
      deep: { list: ['***', 42] },
      total: '***',
    })
    for (const canary of [token, password, outputKey])
      expect(JSON.stringify(result)).not.toContain(canary)
  })

  it('withholds a plain output holding a sensitive value too short to mask', async () => {
    const result = await runFlow(
      writing('{"note": "the code is ab, and more", "other": "nothing here"}'),
      [parameter('note'), parameter('other')],
      { secrets: ['ab'] },
    )
    expect(result).toMatchObject({
      status: 'Succeeded',
      outputs: { note: '***', other: 'nothing here' },
    })
  })
})
