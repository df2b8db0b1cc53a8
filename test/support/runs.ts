/**
 * Helpers for run tests: a machine with its agent, flows pushed from inline files, and waiting
 * for a run to reach a state.
 */
import { api } from './test-server.ts'

export interface InlineFlow {
  readonly name: string
  readonly runtime?: 'node' | 'shell' | 'python' | 'exec'
  readonly entry?: string
  readonly script: string
  readonly inputs?: readonly Record<string, unknown>[]
  readonly outputs?: readonly Record<string, unknown>[]
  readonly timeoutSeconds?: number
}

export async function pushFlow(
  base: string,
  token: string,
  environmentId: string,
  flow: InlineFlow,
): Promise<{ id: string; contentHash: string; version: number }> {
  const entry = flow.entry ?? (flow.runtime === 'node' ? 'main.js' : 'main.sh')
  const pushed = await api(base, token, 'POST', `/environments/${environmentId}/desktop-flows`, {
    manifest: {
      name: flow.name,
      runtime: flow.runtime ?? 'shell',
      entry,
      inputs: flow.inputs ?? [],
      outputs: flow.outputs ?? [],
      ...(flow.timeoutSeconds && { timeoutSeconds: flow.timeoutSeconds }),
    },
    files: [{ path: entry, contentBase64: Buffer.from(flow.script).toString('base64') }],
  })
  if (pushed.status !== 201 && pushed.status !== 200)
    throw new Error(`push answered ${pushed.status}: ${JSON.stringify(pushed.body)}`)
  return pushed.body
}

/** Polls a run until `done` holds (by default: it ended); fails after `timeoutMs`. */
export async function waitForRun(
  base: string,
  token: string,
  runId: string,
  done: (run: { status: string; [k: string]: unknown }) => boolean = (r) =>
    ['Succeeded', 'Failed', 'Cancelled'].includes(r.status),
  timeoutMs = 20_000,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<Record<string, any>> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const run = (await api(base, token, 'GET', `/runs/${runId}`)).body
    if (done(run)) return run
    if (Date.now() > until)
      throw new Error(`run ${runId} still ${run.status}: ${JSON.stringify(run)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A `waitForRun` condition: the queued run names `code` as some machine's reason. */
export const waitingWith =
  (code: string) =>
  (run: { status: string; [k: string]: unknown }): boolean =>
    ((run.waiting as { machines: { code: string }[] } | null)?.machines ?? []).some(
      (machine) => machine.code === code,
    )
