/**
 * Keeps each run's processes in a cgroup (v2) of their own, so that all of them end with the
 * run. A process group is not enough: a flow can leave it (`setsid`, a daemon's double fork),
 * and what it left would go on running as the account after the run, holding the workspace
 * open and whatever else the account can reach. A cgroup is inherited by every child, and no
 * unprivileged process can leave it. (What a flow asks others to start, such as the account's
 * `systemd --user`, cron or a terminal multiplexer already running, is not its child: that is
 * outside any cgroup of the run's.)
 *
 * The runs' cgroups are made below the agent's own (`desklink-runs/<machineId>/<runId>`), which
 * needs a writable cgroup v2 hierarchy: an agent run by systemd needs `Delegate=yes`. Where
 * there is none, `detectRunCgroups` says why, and runs are held by their process group alone.
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface RunCgroups {
  /** Where the runs' cgroups are. */
  readonly base: string
  /** Makes the run's cgroup, ending first one an earlier attempt of the run left. */
  make(runId: string): Promise<void>
  /** The command that moves itself into the run's cgroup, then runs `argv`. */
  command(runId: string, argv: readonly string[]): string[]
  /** Kills every process of the run's cgroup; `end` also waits for them and removes it. */
  kill(runId: string): Promise<void>
  /** Kills what is in the run's cgroup, waits until it is empty and removes it. */
  end(runId: string): Promise<void>
  /** Ends the cgroups runs of an earlier start of the agent left, and answers their run ids. */
  endLeftovers(): Promise<string[]>
}

/** How long `end` waits for killed processes to be gone before it gives up on the cgroup. */
const EMPTY_WITHIN_MS = 5000
const POLL_MS = 5
/** How long a kill by pid waits for the cgroup to be frozen. */
const FROZEN_WITHIN_MS = 1000

/** Exit status of the command when it could not move itself into the run's cgroup. */
export const NOT_CONTAINED_EXIT = 125
export const NOT_CONTAINED_MESSAGE = 'the run could not be put in its cgroup'

/** The shell that moves itself into the cgroup (`$0`), then becomes the flow. */
const MOVE_IN = `echo $$ > "$0" || { echo "${NOT_CONTAINED_MESSAGE}" >&2; exit ${NOT_CONTAINED_EXIT}; }; exec "$@"`

/**
 * Where the wrapper looks for the command it becomes: the system's directories alone. Never
 * the shell's default search path, which for some shells ends in `.`, the run's workspace.
 */
export const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

/** A path field of the mount table, whose spaces and such are octal escapes (`\040`). */
const unescape = (field: string) =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))

/** The cgroup v2 mount: where it is, and which cgroup it shows at that place. */
function cgroup2Mount(): { root: string; at: string } | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before, after] = line.split(' - ')
    if (after?.split(' ')[0] !== 'cgroup2') continue
    const fields = before.split(' ')
    return { root: unescape(fields[3]), at: unescape(fields[4]) }
  }
  return undefined
}

/**
 * Where cgroup `own` is under a mount that shows the hierarchy from `root` down; undefined when
 * it is not at or below `root` (`/a/b` is below `/a`, `/ab` is not).
 */
export function cgroupUnderMount(root: string, own: string): string | undefined {
  if (root === '/') return own
  if (own === root) return '/'
  return own.startsWith(`${root}/`) ? own.slice(root.length) : undefined
}

/** This process's cgroup in the v2 hierarchy (`0::/path`). */
function ownCgroup(): string | undefined {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('0::'))
  return line?.slice(3)
}

/**
 * The runs' cgroups of machine `machineId` below the agent's own cgroup, or why there are none.
 * Only root makes them: an agent that is not root runs flows as itself, and may not hold them
 * apart from itself anyway. Nor where the agent's cgroup is not root's (an agent started with
 * sudo from a desktop session sits in that user's tree, where the user's processes could move
 * the run's out).
 */
export function detectRunCgroups(
  machineId: string,
  name = 'desklink-runs',
): RunCgroups | { unavailable: string } {
  if (process.getuid?.() !== 0) return { unavailable: 'the agent does not run as root' }
  let base: string
  try {
    const mount = cgroup2Mount()
    const own = ownCgroup()
    if (mount === undefined || own === undefined)
      return { unavailable: 'this machine has no cgroup v2 hierarchy' }
    const within = cgroupUnderMount(mount.root, own)
    if (within === undefined)
      return { unavailable: `the agent's cgroup ${own} is not under the mount at ${mount.at}` }
    const parent = join(mount.at, within)
    if (!existsSync(join(parent, 'cgroup.procs')))
      return { unavailable: `the agent's cgroup is not at ${parent}` }
    if (statSync(parent).uid !== 0)
      return { unavailable: `the agent's cgroup ${parent} is not root's` }
    const runs = join(parent, name)
    if (!existsSync(runs)) mkdirSync(runs)
    base = join(runs, machineId)
    if (!existsSync(base)) mkdirSync(base)
  } catch (error) {
    return { unavailable: `cannot make the runs' cgroups: ${(error as Error).message}` }
  }
  const refused = probe(base)
  return refused ? { unavailable: refused } : runCgroupsAt(base)
}

/**
 * Why a process cannot be moved into a run's cgroup here, if it cannot: a cgroup may be made
 * and still refuse processes (one whose parent has controllers enabled for its children, say).
 * Found out now, at start, rather than by every run failing.
 */
function probe(base: string): string | undefined {
  const dir = join(base, `probe-${process.pid}`)
  try {
    mkdirSync(dir)
    const moved = spawnSync('/bin/sh', ['-c', MOVE_IN, join(dir, 'cgroup.procs'), 'true'], {
      encoding: 'utf8',
      env: { PATH: SYSTEM_PATH },
      timeout: 5000,
    })
    if (moved.status !== 0)
      return `a process cannot be moved into ${base}: ${moved.stderr.trim() || String(moved.error)}`
    return undefined
  } catch (error) {
    return `cannot make the runs' cgroups in ${base}: ${(error as Error).message}`
  } finally {
    try {
      rmdirSync(dir)
    } catch {
      // Never made.
    }
  }
}

/** Whether the cgroup's `cgroup.events` says `key` is 1; undefined when it cannot be read. */
function eventIs(dir: string, key: 'populated' | 'frozen'): boolean | undefined {
  try {
    return readFileSync(join(dir, 'cgroup.events'), 'utf8').includes(`${key} 1`)
  } catch {
    return undefined
  }
}

function processesIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((pid) => pid !== '')
      .map(Number)
  } catch {
    return []
  }
}

export function runCgroupsAt(base: string): RunCgroups {
  const dirOf = (runId: string) => join(base, runId)

  async function kill(runId: string): Promise<void> {
    const dir = dirOf(runId)
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1')
      return
    } catch {
      // No cgroup (already ended), or a kernel before 5.14 without `cgroup.kill`: below.
    }
    // Frozen, its processes can neither fork nor exit, so no pid read here is reused by another
    // process before its kill. (A frozen process still dies of SIGKILL.)
    const freeze = (to: '0' | '1') => {
      try {
        writeFileSync(join(dir, 'cgroup.freeze'), to)
        return true
      } catch {
        return false
      }
    }
    if (freeze('1'))
      for (const until = performance.now() + FROZEN_WITHIN_MS; eventIs(dir, 'frozen') === false;) {
        if (performance.now() > until) break
        await sleep(POLL_MS)
      }
    for (const pid of processesIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    freeze('0')
  }

  async function end(runId: string): Promise<void> {
    const dir = dirOf(runId)
    if (!existsSync(dir)) return
    const until = performance.now() + EMPTY_WITHIN_MS
    // Killed again while it empties: without `cgroup.kill`, a process may fork between the
    // read of the list and its kill. Empty is `populated 0`: a process still exiting is no
    // longer listed, yet holds the cgroup.
    for (;;) {
      await kill(runId)
      if (eventIs(dir, 'populated') !== true) {
        try {
          rmdirSync(dir)
          return
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
        }
      }
      if (performance.now() > until)
        throw new Error(`the run's cgroup ${dir} did not empty within ${EMPTY_WITHIN_MS} ms`)
      await sleep(POLL_MS)
    }
  }

  return {
    base,
    kill,
    end,
    async make(runId) {
      await end(runId)
      mkdirSync(dirOf(runId))
    },
    command: (runId, argv) => [
      '/bin/sh',
      '-c',
      MOVE_IN,
      join(dirOf(runId), 'cgroup.procs'),
      ...argv,
    ],
    async endLeftovers() {
      const left = readdirSync(base, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
      for (const runId of left) await end(runId)
      return left
    },
  }
}
