/**
 * Whether a process group the journal names is still the run's, before the agent kills it
 * after a restart. The group id is only a number: once every process of the run's group is
 * gone, the kernel may hand it to a new process that leads a group of its own, and root would
 * kill that instead. A group is the run's while it has processes and all of them are the run
 * account's.
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs'

/** The process group of `pid`, from `/proc/<pid>/stat` (after the command, which may hold spaces). */
function groupOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after ") ": state, ppid, pgrp, ...
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
  } catch {
    return undefined // gone meanwhile
  }
}

/**
 * The real uid of `pid`, from its status: not the owner of `/proc/<pid>`, which is root for a
 * process that made itself undumpable (as ssh-agent does) whoever runs it.
 */
function realUidOf(pid: string, proc: string): number | undefined {
  try {
    const line = /^Uid:\s+(\d+)/m.exec(readFileSync(`${proc}/${pid}/status`, 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}

/** Whether group `pgid` has processes, all of them of `uid`. */
export function groupIsAccounts(pgid: number, uid: number, proc = '/proc'): boolean {
  let found = false
  for (const pid of readdirSync(proc)) {
    if (!/^\d+$/.test(pid) || groupOf(pid) !== pgid) continue
    const owner = realUidOf(pid, proc)
    if (owner === undefined) continue // gone meanwhile
    if (owner !== uid) return false
    found = true
  }
  return found
}
