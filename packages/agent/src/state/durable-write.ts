/**
 * Files that come through a crash or a power cut whole: written to a temporary file beside the
 * real one, flushed to the disk, renamed over it, and the directory flushed as well so that the
 * rename lasts too. A reader then finds the old content or the new, never a part of either.
 * Without the flushes, a rename can reach the disk before the data it names (ext4 and xfs both
 * allow it), and a power cut leaves an empty or torn file under the real name.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'

const TEMPORARY = /\.[0-9a-f-]{36}\.tmp$/

/** Flushes a directory's entries (a file made, renamed or removed in it) to the disk. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Replaces `file` with `data` durably (module header).
 *
 * @example
 * ```ts
 * writeDurably(join(dir, `${runId}.json`), JSON.stringify(entry))
 * ```
 */
export function writeDurably(file: string, data: string | Uint8Array, mode = 0o600): void {
  // A name of its own: two writes of the same file at once never share a temporary file.
  const temporary = `${file}.${randomUUID()}.tmp`
  const fd = openSync(temporary, 'wx', mode)
  try {
    writeFileSync(fd, data)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    rmSync(temporary, { force: true })
    throw error
  }
  closeSync(fd)
  renameSync(temporary, file)
  syncDirectory(dirname(file))
}

/** Removes the temporary files of writes a crash interrupted in `dir`. */
export function removeInterruptedWrites(dir: string): void {
  for (const name of readdirSync(dir))
    if (TEMPORARY.test(name)) rmSync(join(dir, name), { force: true })
}
