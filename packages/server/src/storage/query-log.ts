/**
 * What a caller of `openStorage` may watch: every statement run, for diagnostics and for tests
 * of query plans. Nothing is watched unless asked (Kysely then skips its logging entirely).
 *
 * @module
 */
import type { CompiledQuery, LogConfig } from 'kysely'

export interface StorageOptions {
  /** Sees every statement as it was run. */
  readonly onQuery?: (query: CompiledQuery) => void
}

export function queryLog(options: StorageOptions): LogConfig | undefined {
  const { onQuery } = options
  return onQuery && ((event) => onQuery(event.query))
}
