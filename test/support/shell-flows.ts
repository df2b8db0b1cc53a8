/**
 * Flows run straight through the agent's executor, with none of the server: for tests of what a
 * run does on the machine (its workspace, its processes, its outputs, its runtime).
 */
import type { FlowParameter } from '@desklink/protocol'

import type { FlowExecutor, FlowRunSpec } from '../../packages/agent/src/runs/flow-executor.ts'
import { accountInfo } from '../../packages/agent/src/runs/run-manager.ts'

type PackageFile = FlowRunSpec['pkg']['files'][number]

/** What a test may say of a run besides its package; the rest takes a plain run's values. */
export interface FlowRunOptions {
  runId: string
  inputs?: Record<string, unknown>
  /** Sensitive values of the run (its inputs', its password), masked in what it reports. */
  secrets?: string[]
  /** Names of its sensitive outputs. */
  sensitiveOutputs?: string[]
  signal?: AbortSignal
  timeoutSeconds?: number
  /** The session display an attended run gets. */
  display?: string | null
}

/** Runs the package `pkg` as the OS account `username`. */
export function runFlowPackage(
  executor: FlowExecutor,
  username: string,
  pkg: FlowRunSpec['pkg'],
  options: FlowRunOptions,
) {
  const account = accountInfo(username)
  if (!account) throw new Error(`the test account ${username} is missing`)
  return executor.run({
    runId: options.runId,
    pkg,
    inputs: options.inputs ?? {},
    secrets: options.secrets ?? [],
    sensitiveOutputs: options.sensitiveOutputs ?? [],
    account,
    timeoutSeconds: options.timeoutSeconds ?? 30,
    ...(options.display !== undefined && { display: options.display }),
    signal: options.signal ?? new AbortController().signal,
    onStarted: () => undefined,
  })
}

/** Runs `main.sh` (`script`), with `files` beside it and `outputs` declared, as `username`. */
export function runShellFlow(
  executor: FlowExecutor,
  username: string,
  options: FlowRunOptions & {
    script: string
    files?: PackageFile[]
    outputs?: FlowParameter[]
  },
) {
  const pkg = {
    manifest: {
      name: 'shell-flow',
      description: '',
      runtime: 'shell' as const,
      entry: 'main.sh',
      inputs: [],
      outputs: options.outputs ?? [],
      needsDisplay: false,
    },
    files: [
      ...(options.files ?? []),
      { path: 'main.sh', executable: false, contentBase64: btoa(options.script) },
    ],
  }
  return runFlowPackage(executor, username, pkg, options)
}
