/**
 * The base of run workspaces (`DESKLINK_AGENT_WORK_DIR`), made when missing and checked before
 * every run.
 *
 * Root makes each run's workspace in the base, fills it there and hands it to the run's account, so
 * the base must be the agent's alone. An account that made it first (in `/var/tmp`, say, where
 * anyone may make a directory) keeps it, and could swap a workspace for a link between root's
 * checks and its writes: root would write the package's files, and hand over ownership, wherever
 * the link points. So the base must be a real directory (`lstat`: not a link), owned by the agent's
 * own uid and writable by nobody else; and each directory above it root's or the agent's, writable
 * by others only with the sticky bit (as `/tmp` is), so that nobody can move the base aside and put
 * a link or a directory of theirs in its place. Anything else refuses every run with
 * `WorkDirUnsafe`: the agent does not take over a directory someone else made, since it cannot know
 * what that account left in it. The default (`/var/lib/desklink-runs`) is in a directory only root
 * can write to, where nobody else can make it first.
 *
 * Run accounts pass through the base to their workspace, so it is 0711 (searchable, not
 * listable), and every directory above it must be searchable by others (`WorkDirNotReachable`).
 *
 * @module
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs'
import { dirname } from 'node:path'

export interface WorkDirProblem {
  readonly code: 'WorkDirUnsafe' | 'WorkDirNotReachable'
  /** What is wrong and what to do, for the run's error and the agent's log. */
  readonly message: string
}

const BASE_MODE = 0o711
/** The sticky bit: in such a directory only an entry's owner may rename or remove it. */
const STICKY = 0o1000

/** `dir` and each directory above it, up to `/`. */
function* upFrom(dir: string): Generator<string> {
  for (let current = dir; ; current = dirname(current)) {
    yield current
    if (current === dirname(current)) return
  }
}

/**
 * Makes the base if missing and checks it (module header): undefined when runs may use it.
 *
 * @example
 * ```ts
 * const problem = prepareWorkDir('/var/lib/desklink-runs', { uid: 0, forOtherAccounts: true })
 * if (problem) return fail(problem.code, problem.message)
 * ```
 */
export function prepareWorkDir(
  base: string,
  options: {
    /** The agent's own uid: the base must be its. */
    readonly uid: number
    /** Whether runs go as other accounts (the agent is root), who must pass through the base. */
    readonly forOtherAccounts: boolean
  },
): WorkDirProblem | undefined {
  const { uid } = options
  const agentUser = uid === 0 ? 'root' : String(uid)
  const unsafe = (path: string, why: string): WorkDirProblem => ({
    code: 'WorkDirUnsafe',
    message:
      path === base
        ? `No flow runs on this machine: its work directory ${base} ${why}. Remove it (the agent makes it anew), or make it the agent's alone (chown ${agentUser} and chmod 711 it), or set DESKLINK_AGENT_WORK_DIR.`
        : `No flow runs on this machine: ${path}, above its work directory ${base}, ${why}, so another account could put something else in the work directory's place. Move the work directory (DESKLINK_AGENT_WORK_DIR), or make ${path} writable by root alone.`,
  })

  try {
    mkdirSync(base, { recursive: true, mode: BASE_MODE })
  } catch (error) {
    // Something not a directory is in the way: the checks below say what.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  const above = checkAbove(base, uid, options.forOtherAccounts, unsafe)
  if (above) return above

  const seen = lstatSync(base)
  if (seen.isSymbolicLink()) return unsafe(base, 'is a symbolic link')
  if (!seen.isDirectory()) return unsafe(base, 'is not a directory')
  if (seen.uid !== uid) return unsafe(base, `belongs to uid ${seen.uid}, not to the agent`)
  if ((seen.mode & 0o022) !== 0)
    return unsafe(
      base,
      `may be written by its group or others (mode ${(seen.mode & 0o7777).toString(8)})`,
    )
  // Opened without following a link, and the same directory as checked: the mode is set on it.
  const fd = openSync(base, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
  try {
    const opened = fstatSync(fd)
    if (opened.ino !== seen.ino || opened.dev !== seen.dev)
      return unsafe(base, 'was replaced while it was checked')
    if ((opened.mode & 0o7777) !== BASE_MODE) fchmodSync(fd, BASE_MODE)
  } finally {
    closeSync(fd)
  }
  return undefined
}

/**
 * Each directory above the base, as configured (a link there must be safe too) and as it
 * resolves: root's or the agent's, and writable by others only with the sticky bit, so that
 * nobody else can move the base aside and put a directory of theirs in its place, into which the
 * agent would write a package and then run it. A non-root agent's own directories may be
 * writable by its group (a home made under umask 002); root's agent's must be root's alone.
 * Where runs go as other accounts, each must be searchable by them.
 */
function checkAbove(
  base: string,
  uid: number,
  forOtherAccounts: boolean,
  unsafe: (path: string, why: string) => WorkDirProblem,
): WorkDirProblem | undefined {
  const problem = (dir: string, stat: Stats): WorkDirProblem | undefined => {
    if (stat.uid !== 0 && stat.uid !== uid) return unsafe(dir, `belongs to uid ${stat.uid}`)
    const writable = stat.uid === uid && uid !== 0 ? 0o002 : 0o022
    if ((stat.mode & writable) !== 0 && (stat.mode & STICKY) === 0)
      return unsafe(dir, 'may be written by other accounts')
    return undefined
  }
  for (const dir of upFrom(dirname(base))) {
    const stat = lstatSync(dir)
    // A link's own mode means nothing; who may replace it is its owner.
    if (stat.uid !== 0 && stat.uid !== uid) return unsafe(dir, `belongs to uid ${stat.uid}`)
    const found = stat.isDirectory() ? problem(dir, stat) : undefined
    if (found) return found
  }
  for (const dir of upFrom(realpathSync(dirname(base)))) {
    const stat = statSync(dir)
    const found = problem(dir, stat)
    if (found) return found
    if (forOtherAccounts && (stat.mode & 0o001) === 0)
      return {
        code: 'WorkDirNotReachable',
        message: `Run accounts cannot reach the work directory: ${dir} is not searchable by others (chmod o+x, or set DESKLINK_AGENT_WORK_DIR).`,
      }
  }
  return undefined
}
