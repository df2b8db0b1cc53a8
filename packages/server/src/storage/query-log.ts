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
  /**
   * The worker thread that checkpoints a SQLite file failed (with this error) or exited: the
   * server's connection checkpoints for itself from then on, on the event loop.
   */
  readonly onCheckpointerFailure?: (error: unknown) => void
  /**
   * A pooled PostgreSQL connection failed while idle (the database restarted or ended it, the
   * network dropped): the pool discards it and opens another when one is needed.
   */
  readonly onIdleConnectionLost?: (error: unknown) => void
}

export function queryLog(options: StorageOptions): LogConfig | undefined {
  const { onQuery } = options
  return onQuery && ((event) => onQuery(event.query))
}
