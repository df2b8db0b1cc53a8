/**
 * Keeps each run's processes in a cgroup (v2) of their own, so that all of them end with the
 * run. A process group is not enough: a flow can leave it (`setsid`, a daemon's double fork),
 * and what it left would go on running as the account after the run, holding the workspace
 * open and whatever else the account can reach. A cgroup is inherited by every child, and no
 * unprivileged process can leave it.
 *
 * The runs' cgroups are made below the agent's own (`desklink-runs/<runId>`), which needs a
 * writable cgroup v2 hierarchy: an agent run by systemd needs `Delegate=yes`. Where there is
 * none, `detectRunCgroups` says why, and runs are held by their process group alone.
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface RunCgroups {
  /** Where the runs' cgroups are. */
  readonly base: string
  /**
   * Makes the run's cgroup (ending one an earlier attempt left) and answers the command that
   * moves itself into it and then runs `argv`: nothing of the flow runs outside it.
   */
  enter(runId: string, argv: readonly string[]): Promise<string[]>
  /** Kills every process of the run's cgroup at once; `end` waits for them and removes it. */
  kill(runId: string): void
  /** Kills what is left in the run's cgroup, waits until it is empty and removes it. */
  end(runId: string): Promise<void>
}

/** How long `end` waits for killed processes to be gone before it leaves the cgroup be. */
const EMPTY_WITHIN_MS = 5000
const EMPTY_POLL_MS = 5

/** The first line of the shell that moves itself into the cgroup, then becomes the flow. */
const MOVE_IN =
  'echo $$ > "$0" || { echo "the run could not be put in its cgroup" >&2; exit 125; }; exec "$@"'

/** The cgroup v2 mount point, from the mount table. */
function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before, after] = line.split(' - ')
    if (after?.split(' ')[0] === 'cgroup2') return before.split(' ')[4]
  }
  return undefined
}

/** This process's cgroup in the v2 hierarchy (`0::/path`). */
function ownCgroup(): string | undefined {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('0::'))
  return line?.slice(3)
}

/**
 * The runs' cgroups below the agent's own, or why there are none. Only root makes them: an
 * agent that is not root runs flows as itself, and may not hold them apart from itself anyway.
 */
export function detectRunCgroups(name = 'desklink-runs'): RunCgroups | { unavailable: string } {
  if (process.getuid?.() !== 0) return { unavailable: 'the agent does not run as root' }
  let base: string
  try {
    const mount = cgroup2Mount()
    const own = ownCgroup()
    if (mount === undefined || own === undefined)
      return { unavailable: 'this machine has no cgroup v2 hierarchy' }
    base = join(mount, own, name)
    mkdirSync(base, { recursive: true })
    if (!existsSync(join(base, 'cgroup.procs'))) return { unavailable: `${base} is not a cgroup` }
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

export function runCgroupsAt(base: string): RunCgroups {
  const dirOf = (runId: string) => join(base, runId)

  function kill(runId: string): void {
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
      } catch {
        // Gone, or no freezer: killed as they are.
      }
    }
    freeze('1')
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
    // read of the list and its kill.
    for (kill(runId); processesIn(dir).length > 0; kill(runId)) {
      if (performance.now() > until) return
      await sleep(EMPTY_POLL_MS)
    }
    try {
      rmdirSync(dir)
    } catch {
      // Emptied but not yet released by the kernel: the next attempt of the run, or the next
      // start of the agent, removes it.
    }
  }

  return {
    base,
    kill,
    end,
    async enter(runId, argv) {
      await end(runId)
      mkdirSync(dirOf(runId))
      return ['/bin/sh', '-c', MOVE_IN, join(dirOf(runId), 'cgroup.procs'), ...argv]
    },
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
