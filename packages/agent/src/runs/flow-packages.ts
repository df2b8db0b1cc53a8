/**
 * Desktop flow packages on the machine: downloaded from the server by content hash (only for a
 * run this machine was offered), checked against that hash, and kept in a cache by it.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { type FlowManifest, packageDigestChunks, type PackageFile } from '@desklink/protocol'

import { AgentError } from '../agent-error.ts'
import { callServer } from '../server-client.ts'

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

export function createPackageCache(options: {
  stateDir: string
  server: string
  assertion: () => Promise<string>
  fetchFn?: typeof fetch
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
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  return {
    async get(contentHash: string): Promise<FlowPackage> {
      const file = join(dir, `${contentHash}.json`)
      if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as FlowPackage
      const pkg = await download(contentHash)
      if (digestOf(pkg) !== contentHash)
        throw new AgentError('TotalChunksMismatch', {
          message: 'The downloaded flow package does not match its hash.',
        })
      writeFileSync(file, JSON.stringify(pkg), { mode: 0o600 })
      return pkg
    },
  }
}
