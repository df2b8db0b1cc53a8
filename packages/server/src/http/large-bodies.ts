/**
 * The routes that take bodies larger than the server's general limit (`maxBodyBytes`): a
 * desktop flow package (16 MB of files, base64 in JSON) and run inputs (2 MB).
 *
 * @module
 */
import { MAX_FLOW_PACKAGE_BYTES, MAX_RUN_INPUT_BYTES } from '@desklink/protocol'

export interface LargeBodyRoute {
  readonly method: string
  readonly path: RegExp
  readonly maxBytes: number
}

export const LARGE_BODY_ROUTES: readonly LargeBodyRoute[] = [
  {
    method: 'POST',
    path: /^\/api\/v1\/environments\/[^/]+\/desktop-flows$/,
    maxBytes: Math.ceil((MAX_FLOW_PACKAGE_BYTES * 4) / 3) + 1024 * 1024,
  },
  {
    method: 'POST',
    path: /^\/api\/v1\/desktop-flows\/[^/]+\/runs$/,
    maxBytes: MAX_RUN_INPUT_BYTES + 64 * 1024,
  },
]
