/**
 * Identifier generation. Ids are time-ordered UUIDv7 (RFC 9562 §5.7) so that primary-key
 * indexes stay append-mostly on both databases.
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'

// Random bytes drawn from the system 4 KiB at a time: one draw per 256 ids, not one each
// (a draw costs as much as the rest of making an id).
const pool = Buffer.alloc(4096)
let used = pool.length

function randomChunk(): Buffer {
  if (used === pool.length) {
    randomFillSync(pool)
    used = 0
  }
  const chunk = pool.subarray(used, used + 16)
  used += 16
  return chunk
}

/** Produces a new identifier; injected so tests can make ids predictable. */
export type IdGenerator = () => string

/** The last id's millisecond, and the counter that orders ids made within it. */
let lastMs = -1
let sequence = 0
/** 12 bits of counter (RFC 9562 §6.2, method 1); a new millisecond starts it in the lower half. */
const SEQUENCE_MAX = 0xfff

/**
 * Each id sorts after the one made before it in this process, even within one millisecond
 * (the 12 bits after the version count them): records ordered by time and then id, such as a
 * run's events, keep the order they were made in.
 *
 * @example
 * ```ts
 * const id = uuidv7() // '01935f5e-8c1a-7b2e-9f00-2d4c6a8b1e3f'
 * ```
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const bytes = Buffer.from(randomChunk())
  if (nowMs > lastMs) {
    lastMs = nowMs
    sequence = bytes.readUInt16BE(6) & 0x7ff
  } else if (sequence < SEQUENCE_MAX) {
    // The same millisecond, or a clock that went back: counted on from the last id.
    sequence += 1
  } else {
    // 4,096 ids in one millisecond: the next ones borrow from the following one.
    lastMs += 1
    sequence = 0
  }
  bytes.writeUIntBE(lastMs, 0, 6)
  bytes.writeUInt16BE(0x7000 | sequence, 6)
  bytes[8] = 0x80 | (bytes[8] & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The clock services read; injected so tests can freeze or advance time. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
