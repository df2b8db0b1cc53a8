/**
 * Shell flows run straight through the agent's executor, with none of the server: for tests of
 * what a run does on the machine (its workspace, its processes).
 */
import type { FlowExecutor, FlowRunSpec } from '../../packages/agent/src/runs/flow-executor.ts'
import { accountInfo } from '../../packages/agent/src/runs/run-manager.ts'

type PackageFile = FlowRunSpec['pkg']['files'][number]

/** Runs `main.sh` (`script`), with `files` beside it, as the OS account `username`. */
export function runShellFlow(
  executor: FlowExecutor,
  username: string,
  options: {
    runId: string
    script: string
    inputs?: Record<string, unknown>
    files?: PackageFile[]
    signal?: AbortSignal
    timeoutSeconds?: number
  },
) {
  const account = accountInfo(username)
  if (!account) throw new Error(`the test account ${username} is missing`)
  return executor.run({
    runId: options.runId,
    pkg: {
      manifest: {
        name: 'shell-flow',
        description: '',
        runtime: 'shell',
        entry: 'main.sh',
        inputs: [],
        outputs: [],
        needsDisplay: false,
      },
      files: [
        ...(options.files ?? []),
        { path: 'main.sh', executable: false, contentBase64: btoa(options.script) },
      ],
    },
    inputs: options.inputs ?? {},
    secrets: [],
    sensitiveOutputs: [],
    account,
    timeoutSeconds: options.timeoutSeconds ?? 30,
    signal: options.signal ?? new AbortController().signal,
    onStarted: () => undefined,
  })
}
