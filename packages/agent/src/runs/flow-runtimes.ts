/**
 * The runtimes a flow's manifest may name, each with everything the machine needs to know
 * about it: how its entry is started, whether the entry must be executable, and whether this
 * machine can run it at all.
 *
 * A machine without a runtime fails its runs at once with `RuntimeUnavailable`, which says what to
 * install, rather than with exit code 127. Only `python3` can be missing: `node` is the agent's
 * own, `/bin/sh` is everywhere, and an `exec` flow brings its program. Flows run with one fixed
 * PATH (`FLOW_PATH`), the directories `setpriv --reset-env` gives an account, and the interpreter
 * is looked for there alone: what the check finds is what the flow starts.
 *
 * The entry of an `exec` flow is made executable in the workspace whatever its file's mode in
 * the package: the manifest names it as the program to run, and a mode bit lost on the way (a
 * package put together on Windows, or a push that did not say `executable`) would otherwise
 * fail every run with exit code 126 on every machine, where no other machine could do better.
 *
 * @module
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'

import type { FlowRuntime } from '@desklink/protocol'

/** The PATH flows run with. */
export const FLOW_PATH = '/usr/local/bin:/usr/bin:/bin'

export interface FlowRuntimeEntry {
  /** The command that runs `entry`, from the workspace. */
  command(entry: string): string[]
  /** Whether the entry is made executable in the workspace. */
  readonly entryExecutable: boolean
  /** Why this machine cannot run flows of this runtime with `flowPath`, or undefined. */
  missing(flowPath: string): string | undefined
}

/** Whether an executable file `name` is in one of the directories of `flowPath`. */
function onPath(name: string, flowPath: string): boolean {
  return flowPath.split(':').some((dir) => {
    try {
      const stat = statSync(join(dir, name))
      return stat.isFile() && (stat.mode & 0o111) !== 0
    } catch {
      return false
    }
  })
}

export const FLOW_RUNTIMES: Readonly<Record<FlowRuntime, FlowRuntimeEntry>> = {
  node: {
    command: (entry) => [process.execPath, entry],
    entryExecutable: false,
    missing: () => undefined,
  },
  python: {
    command: (entry) => ['python3', entry],
    entryExecutable: false,
    missing: (flowPath) =>
      onPath('python3', flowPath)
        ? undefined
        : `python3 is not installed on this machine (looked for in ${flowPath}, the PATH flows run with).`,
  },
  shell: {
    command: (entry) => ['/bin/sh', entry],
    entryExecutable: false,
    missing: () => undefined,
  },
  exec: {
    command: (entry) => [`./${entry}`],
    entryExecutable: true,
    missing: () => undefined,
  },
}
