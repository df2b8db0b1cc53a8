/**
 * What a desktop flow package's content hash is computed over, so the server (which names the
 * package by it) and the machine (which checks what it downloaded) agree byte for byte:
 * the manifest's JSON, then for each file in path order its path, mode and length, and its bytes.
 * Each side feeds these chunks to its own SHA-256.
 *
 * @module
 */
import type { FlowManifest, PackageFile } from '../api/flow-schemas.ts'

const encoder = new TextEncoder()

/** Files in the order the digest (and the package) keeps them. */
export const sortedFiles = <T extends { path: string }>(files: readonly T[]): T[] =>
  [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

export function* packageDigestChunks(
  manifest: FlowManifest,
  files: readonly PackageFile[],
  decode: (base64: string) => Uint8Array,
): Generator<Uint8Array> {
  yield encoder.encode(JSON.stringify(manifest))
  for (const file of sortedFiles(files)) {
    const content = decode(file.contentBase64)
    yield encoder.encode(`\0${file.path}\0${file.executable ? 'x' : '-'}\0${content.length}\0`)
    yield content
  }
}
