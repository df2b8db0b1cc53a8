/**
 * Desktop flow packages on the machine: downloaded from the server by content hash (only for a
 * run this machine was offered), checked against that hash, and kept in a cache by it.
 *
 * A cached package is checked against its hash again each time it is read: a write a crash cut
 * short (written durably since, but perhaps by an older agent), a disk error or an edit would
 * otherwise break that flow version on this machine for good. One that does not match is
 * fetched again and replaces it. Hashing costs little next to a run: about 30 ms for the
 * largest package (16 MB).
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { type FlowManifest, packageDigestChunks, type PackageFile } from '@desklink/protocol'

import { AgentError } from '../agent-error.ts'
import type { AgentLogger } from '../agent-logger.ts'
import { callServer } from '../server-client.ts'
import { removeInterruptedWrites, writeDurably } from '../state/durable-write.ts'

export interface FlowPackage {
  readonly manifest: FlowManifest
  readonly files: PackageFile[]
}

const DOWNLOAD_TRIES = 3
const decode = (base64: string) => Buffer.from(base64, 'base64')

export function digestOf(pkg: FlowPackage): string {
  const hash = createHash('sha256')
  for (const chunk of packageDigestChunks(pkg.manifest, pkg.files, decode)) hash.update(chunk)
  return hash.digest('hex')
}

/** Why the cached copy cannot be used, or undefined when it matches its hash. */
function damage(pkg: FlowPackage, contentHash: string): string | undefined {
  try {
    return digestOf(pkg) === contentHash ? undefined : 'it does not match its hash'
  } catch {
    return 'it is not a flow package'
  }
}

export function createPackageCache(options: {
  stateDir: string
  server: string
  assertion: () => Promise<string>
  fetchFn?: typeof fetch
  logger?: AgentLogger
}) {
  const dir = join(options.stateDir, 'packages')
  /** A few tries a second apart: the server may be restarting. */
  async function download(contentHash: string): Promise<FlowPackage> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await callServer<FlowPackage>(
          options.fetchFn ?? fetch,
          options.server,
          'GET',
          `/agent/flow-packages/${contentHash}`,
          { machineAssertion: await options.assertion() },
        )
      } catch (error) {
        if (attempt >= DOWNLOAD_TRIES || (error as AgentError).code !== 'ServerUnreachable')
          throw error
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    }
  }

  /** The cached package, if there is one and it is whole; a damaged one is said and ignored. */
  function tryCached(file: string, contentHash: string): FlowPackage | undefined {
    let pkg: FlowPackage
    try {
      pkg = JSON.parse(readFileSync(file, 'utf8')) as FlowPackage
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      // Not the parser's message: it would quote the package's content.
      options.logger?.warn(
        { contentHash, reason: 'it is not valid JSON' },
        'cached flow package damaged: fetching it again',
      )
      return undefined
    }
    const reason = damage(pkg, contentHash)
    if (reason === undefined) return pkg
    options.logger?.warn({ contentHash, reason }, 'cached flow package damaged: fetching it again')
    return undefined
  }

  mkdirSync(dir, { recursive: true, mode: 0o700 })
  removeInterruptedWrites(dir)
  return {
    async get(contentHash: string): Promise<FlowPackage> {
      const file = join(dir, `${contentHash}.json`)
      const cached = tryCached(file, contentHash)
      if (cached) return cached
      const pkg = await download(contentHash)
      if (digestOf(pkg) !== contentHash)
        throw new AgentError('TotalChunksMismatch', {
          message: 'The downloaded flow package does not match its hash.',
        })
      writeDurably(file, JSON.stringify(pkg))
      return pkg
    },
  }
}
