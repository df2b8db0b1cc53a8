/**
 * A desktop flow package as pushed: checks what the schema cannot (unique paths, the entry is
 * one of the files, the size limit) and computes its address, a SHA-256 over the manifest and
 * every file (see `packageDigestChunks`), so the same package always has the same hash and a
 * machine can check and cache what it downloads by it.
 *
 * @module
 */
import { createHash } from 'node:crypto'

import {
  type FlowManifest,
  MAX_FLOW_PACKAGE_BYTES,
  packageDigestChunks,
  type PackageFile,
  sortedFiles,
} from '@desklink/protocol'

import { AppError } from '../errors/index.ts'

export interface CheckedPackage {
  readonly contentHash: string
  readonly sizeBytes: number
  readonly files: readonly PackageFile[]
}

const decode = (base64: string) => Buffer.from(base64, 'base64')

export function checkPackage(
  manifest: FlowManifest,
  files: readonly PackageFile[],
): CheckedPackage {
  const sorted = sortedFiles(files)
  const duplicate = sorted.find((file, i) => i > 0 && sorted[i - 1].path === file.path)
  if (duplicate) {
    throw new AppError('InvalidRequestBody', {
      message: `The package holds '${duplicate.path}' twice.`,
      details: { field: 'files' },
    })
  }
  // The decoded size, without decoding: the files are decoded once, for the digest.
  const size = sorted.reduce((sum, f) => sum + Buffer.byteLength(f.contentBase64, 'base64'), 0)
  if (size > MAX_FLOW_PACKAGE_BYTES) {
    throw new AppError('FlowPackageTooLarge', {
      details: { sizeBytes: size, maxBytes: MAX_FLOW_PACKAGE_BYTES },
    })
  }
  if (!sorted.some((f) => f.path === manifest.entry)) {
    throw new AppError('InvalidRequestBody', {
      message: `The entry '${manifest.entry}' is not one of the package's files.`,
      details: { field: 'manifest.entry' },
    })
  }
  const hash = createHash('sha256')
  for (const chunk of packageDigestChunks(manifest, sorted, decode)) hash.update(chunk)
  return { contentHash: hash.digest('hex'), sizeBytes: size, files: sorted }
}
