/**
 * Runs a script flow as an OS account (architecture §10, the plain path): a private workspace
 * owned by the account, the package's files in it, the inputs as a JSON file; the flow started
 * with the account's groups and a clean environment (`setpriv --init-groups --reset-env`) in a
 * process group of its own, inside the user's session for attended runs; its outputs read back
 * from a JSON file it writes; the whole group killed on cancel or timeout. Where the machine
 * allows it, the run's processes are also held in a cgroup of their own (`run-cgroups.ts`): then
 * those the flow detached from its group are killed too, when it ends. The workspaces' base is
 * checked before each run (`work-dir.ts`), the outputs against the manifest (`flow-outputs.ts`).
 *
 * `FlowExecutor` is the seam later runtimes (display sessions, a flow SDK) plug into.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { existsSync, lchownSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { FLOW_INPUTS_FILE, FLOW_OUTPUTS_FILE, type RunCode } from '@desklink/protocol'

import type { AgentLogger } from '../agent-logger.ts'
import { readOutputs, settleOutputs } from './flow-outputs.ts'
import type { FlowPackage } from './flow-packages.ts'
import { FLOW_PATH, FLOW_RUNTIMES } from './flow-runtimes.ts'
import {
  NOT_CONTAINED_EXIT,
  NOT_CONTAINED_MESSAGE,
  type RunCgroups,
  SYSTEM_PATH,
} from './run-cgroups.ts'
import { mask, SHORTEST_MASKED } from './secret-masking.ts'
import { prepareWorkDir, type WorkDirProblem } from './work-dir.ts'

export interface OsAccount {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
}

export interface FlowRunSpec {
  readonly runId: string
  readonly pkg: FlowPackage
  readonly inputs: Record<string, unknown>
  /** Values never to appear in what the run reports (sensitive inputs). */
  readonly secrets: readonly string[]
  /** Outputs whose values must not appear in what the run reports either. */
  readonly sensitiveOutputs: readonly string[]
  readonly account: OsAccount
  /** Attended runs: the user's session display. */
  readonly display?: string | null
  readonly timeoutSeconds: number
  readonly signal: AbortSignal
  readonly onStarted: (pgid: number) => void
}

export interface FlowResult {
  readonly status: 'Succeeded' | 'Failed' | 'Cancelled'
  readonly exitCode: number | null
  readonly outputs: Record<string, unknown> | null
  readonly error: { code: RunCode; message: string } | null
}

export interface FlowExecutor {
  run(spec: FlowRunSpec): Promise<FlowResult>
  /** Removes what a run left on the machine when the agent stopped during it (its workspace). */
  discard(runId: string, account: OsAccount): Promise<void>
}

const STDERR_TAIL = 2048
const STDERR_GRACE_MS = 500

/**
 * What the flow last wrote to stderr, for its failure's message, with every sensitive value
 * masked; withheld when a sensitive value is too short to be masked without garbling the rest.
 * `tail` holds more than is shown, by the longest value, so that a value the cut would split is
 * masked whole before the cut. When `tail` began mid-stream (`cut`), its first characters may be
 * the end of a value that began before them, which no mask recognises: they are dropped.
 */
function lastOutput(tail: string, cut: boolean, secrets: readonly string[]): string {
  if (tail.trim() === '') return ''
  if (secrets.some((s) => s.length < SHORTEST_MASKED))
    return ' Its last output is withheld: a sensitive value is too short to be masked in it.'
  const longest = Math.max(0, ...secrets.map((secret) => secret.length))
  const masked = mask(tail, secrets)
  const whole = cut ? masked.slice(Math.max(0, longest - 1)) : masked
  return ` Last output: ${whole.slice(-STDERR_TAIL).trim()}`
}

/**
 * Removes a run's workspace. What is in it may be the account's, and a process of the account
 * may still change it: root deleting in there could be led by a link swapped in mid-walk to
 * delete elsewhere. So the account empties it (it can delete nothing that is not its own), and
 * root only removes the directory left, empty, from the base that is root's.
 */
async function removeWorkspace(workspace: string, account: OsAccount): Promise<void> {
  if (!existsSync(workspace)) return
  // An agent that is not root runs flows as itself: everything in there is its own.
  if (process.getuid?.() !== 0) {
    rmSync(workspace, { recursive: true, force: true })
    return
  }
  // Directories the flow made read-only are made writable first (by the account, which owns
  // them): otherwise what is in them could not be deleted.
  const emptyIt =
    'find "$1" -type d -exec chmod u+w {} + 2>/dev/null; find "$1" -mindepth 1 -delete'
  await new Promise<void>((resolve) => {
    const emptying = spawn(
      'setpriv',
      [
        `--reuid=${account.uid}`,
        `--regid=${account.gid}`,
        '--clear-groups',
        '--reset-env',
        '--',
        '/bin/sh',
        '-c',
        emptyIt,
        'sh',
        workspace,
      ],
      { stdio: 'ignore', env: {} },
    )
    emptying.on('error', () => resolve())
    emptying.on('exit', () => resolve())
  })
  try {
    rmdirSync(workspace)
  } catch {
    // Not empty (a process of the account's still writes there): it stays, the account's.
  }
}

const failed = (code: RunCode, message: string, exitCode: number | null = null): FlowResult => ({
  status: 'Failed',
  exitCode,
  outputs: null,
  error: { code, message },
})

export function createScriptExecutor(options: {
  workDir: string
  /** Where each run's processes are held; without, by their process group alone. */
  cgroups?: RunCgroups
  logger?: AgentLogger
  /** The PATH flows run with, where runtimes are looked for. @defaultValue `FLOW_PATH` */
  flowPath?: string
}): FlowExecutor {
  const { cgroups } = options
  const flowPath = options.flowPath ?? FLOW_PATH
  /** The work directory's problem the log has been told of: told once, not at every run. */
  let toldProblem: string | undefined
  const tellOnce = (problem: WorkDirProblem | undefined) => {
    if (problem && problem.message !== toldProblem)
      options.logger?.error(
        { code: problem.code, workDir: options.workDir },
        `no flow can run: ${problem.message}`,
      )
    toldProblem = problem?.message
  }
  /** Ends the run's cgroup; one that would not empty is left, and said. */
  const endCgroup = (runId: string) =>
    cgroups
      ?.end(runId)
      .catch((error: unknown) =>
        options.logger?.warn({ err: error, runId }, "a run's processes outlived it"),
      )
  return {
    async discard(runId, account) {
      // What the run left running goes first: it could still be writing in the workspace.
      await endCgroup(runId)
      await removeWorkspace(join(options.workDir, runId), account)
    },

    async run(spec) {
      const uid = process.getuid?.() ?? 0
      const asRoot = uid === 0
      if (!asRoot && uid !== spec.account.uid)
        return failed(
          'AgentNotPrivileged',
          `The agent does not run as root, so it cannot run flows as ${spec.account.name}.`,
        )
      // A machine without the runtime fails the run at once, with what to install: turned down,
      // the run would wait for another machine until its queue timeout, and on most targets
      // no other machine differs.
      const missing = FLOW_RUNTIMES[spec.pkg.manifest.runtime].missing(flowPath)
      if (missing) return failed('RuntimeUnavailable', missing)
      // Unattended runs have no display of their own (yet): one that needs a display goes into a
      // session that has one, or fails here, rather than run blind and fail somewhere inside.
      if (spec.pkg.manifest.needsDisplay && !spec.display)
        return failed(
          'DisplayUnavailable',
          'The flow needs a display (needsDisplay), and this run has none: run it attended, in a session of the user with a display, or turn on reuse sessions for unattended runs to go into the user’s active session.',
        )
      const problem = prepareWorkDir(options.workDir, { uid, forOtherAccounts: asRoot })
      tellOnce(problem)
      if (problem) return failed(problem.code, problem.message)
      const runtime = FLOW_RUNTIMES[spec.pkg.manifest.runtime]
      const workspace = join(options.workDir, spec.runId)
      // Left by an earlier attempt of this run (the agent restarted): what it left running
      // goes first (it could still be writing there), then its workspace, which may hold the
      // account's. The cgroup is made anew before the workspace: nothing is left to undo then.
      await cgroups?.make(spec.runId)
      await removeWorkspace(workspace, spec.account)
      // Built as root's, where the account can do nothing, and handed over once complete: root
      // never writes into a directory of the account's, where a link the account (or a process
      // of an earlier run) planted would take root's write, or its chown, elsewhere.
      const inputsFile = join(workspace, FLOW_INPUTS_FILE)
      const outputsFile = join(workspace, FLOW_OUTPUTS_FILE)
      mkdirSync(workspace, { mode: 0o700 })
      try {
        const made: string[] = []
        for (const file of spec.pkg.files) {
          const path = join(workspace, file.path)
          const dirs: string[] = []
          for (let dir = dirname(path); !existsSync(dir); dir = dirname(dir)) dirs.unshift(dir)
          for (const dir of dirs) {
            mkdirSync(dir, { mode: 0o700 })
            made.push(dir)
          }
          const executable =
            file.executable || (runtime.entryExecutable && file.path === spec.pkg.manifest.entry)
          writeFileSync(path, Buffer.from(file.contentBase64, 'base64'), {
            mode: executable ? 0o700 : 0o600,
            flag: 'wx',
          })
          made.push(path)
        }
        writeFileSync(inputsFile, JSON.stringify(spec.inputs), { mode: 0o600, flag: 'wx' })
        made.push(inputsFile)
        if (asRoot)
          for (const path of [...made.reverse(), workspace])
            lchownSync(path, spec.account.uid, spec.account.gid)
      } catch (error) {
        // Not handed over yet (the workspace itself is root's until the last step): root may
        // remove it, and nothing of a failed build is left behind.
        rmSync(workspace, { recursive: true, force: true })
        await endCgroup(spec.runId)
        throw error
      }

      const runtimeDir = `/run/user/${spec.account.uid}`
      const environment = [
        `PATH=${flowPath}`,
        `DESKLINK_RUN_ID=${spec.runId}`,
        `DESKLINK_INPUTS=${inputsFile}`,
        `DESKLINK_OUTPUTS=${outputsFile}`,
        `DESKLINK_WORKSPACE=${workspace}`,
        ...(spec.display ? [`DISPLAY=${spec.display}`] : []),
        ...(spec.display && existsSync(runtimeDir) ? [`XDG_RUNTIME_DIR=${runtimeDir}`] : []),
      ]
      const command = runtime.command(spec.pkg.manifest.entry)
      const argv = asRoot
        ? [
            'setpriv',
            `--reuid=${spec.account.uid}`,
            `--regid=${spec.account.gid}`,
            '--init-groups',
            '--reset-env',
            '--',
            '/usr/bin/env',
            ...environment,
            ...command,
          ]
        : [
            '/usr/bin/env',
            '-i',
            `HOME=${spec.account.home}`,
            `USER=${spec.account.name}`,
            `LOGNAME=${spec.account.name}`,
            ...environment,
            ...command,
          ]

      // Cancelled while the workspace was being made: the flow never starts. (The listener
      // below only hears a cancel that comes after it is added.)
      if (spec.signal.aborted) {
        await endCgroup(spec.runId)
        await removeWorkspace(workspace, spec.account)
        return { status: 'Cancelled', exitCode: null, outputs: null, error: null }
      }
      const contained = cgroups ? cgroups.command(spec.runId, argv) : argv
      const child = spawn(contained[0], contained.slice(1), {
        cwd: workspace,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        // Where `setpriv` is found; it then makes the account's environment anew.
        env: { PATH: SYSTEM_PATH },
      })
      let stderr = ''
      let cut = false
      const kept = STDERR_TAIL + Math.max(0, ...spec.secrets.map((secret) => secret.length))
      child.stderr.on('data', (chunk: Buffer) => {
        const all = stderr + chunk.toString('utf8')
        cut ||= all.length > kept
        stderr = all.slice(-kept)
      })
      const killGroup = () => {
        void cgroups?.kill(spec.runId)
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL')
        } catch {
          // Already gone.
        }
      }
      if (child.pid) spec.onStarted(child.pid)
      let ending: 'timeout' | 'cancel' | undefined
      const timer = setTimeout(() => {
        ending = 'timeout'
        killGroup()
      }, spec.timeoutSeconds * 1000)
      const onAbort = () => {
        ending ??= 'cancel'
        killGroup()
      }
      spec.signal.addEventListener('abort', onAbort)
      const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
        child.on('error', (error) => resolve({ code: null, error }))
        // The end is the exit: what the flow left running goes now (in its cgroup, if any, a
        // process that left its group too). Without a cgroup, such a process may hold stderr
        // open for ever, so the pipe is read a moment longer and then let go.
        child.on('exit', (code) => {
          killGroup()
          setTimeout(() => child.stderr.destroy(), STDERR_GRACE_MS).unref()
          if (child.stderr.closed) resolve({ code })
          else child.stderr.once('close', () => resolve({ code }))
        })
      })
      clearTimeout(timer)
      spec.signal.removeEventListener('abort', onAbort)
      try {
        if (ending === 'timeout')
          return failed(
            'DesktopFlowsActionTimeout',
            `The run did not end within its timeout of ${spec.timeoutSeconds} s; it was stopped.`,
            exit.code,
          )
        if (ending === 'cancel')
          return { status: 'Cancelled', exitCode: exit.code, outputs: null, error: null }
        if (exit.error) return failed('FlowStartFailed', mask(exit.error.message, spec.secrets))
        // The wrapper, not the flow: it could not move itself into the run's cgroup.
        if (cgroups && exit.code === NOT_CONTAINED_EXIT && stderr.includes(NOT_CONTAINED_MESSAGE))
          return failed(
            'FlowStartFailed',
            `The flow was not started: ${NOT_CONTAINED_MESSAGE} (${cgroups.base}).`,
          )
        let written: Record<string, unknown> | null
        try {
          written = readOutputs(outputsFile, asRoot ? spec.account.uid : uid)
        } catch (error) {
          return failed('InvalidFlowOutputs', (error as Error).message, exit.code)
        }
        const settled = settleOutputs(written, spec.pkg.manifest.outputs, {
          sensitive: spec.sensitiveOutputs,
          secrets: spec.secrets,
        })
        if (exit.code === 0) {
          if (settled.problem) return failed('InvalidFlowOutputs', settled.problem, 0)
          return { status: 'Succeeded', exitCode: 0, outputs: settled.outputs, error: null }
        }
        const secrets = [...spec.secrets, ...settled.secrets]
        return {
          status: 'Failed',
          exitCode: exit.code,
          outputs: settled.outputs,
          error: {
            code: 'FlowFailed',
            message: `The flow exited with code ${String(exit.code)}.${lastOutput(stderr, cut, secrets)}`,
          },
        }
      } finally {
        await endCgroup(spec.runId)
        await removeWorkspace(workspace, spec.account)
      }
    },
  }
}
