/**
 * Queries built and compiled once, then run many times with new values.
 *
 * Building a query with Kysely and compiling it to SQL costs several times what running a small
 * read costs (about 36 µs against 8 µs on a two-core machine), and a handful of queries run on
 * every request or every run. Those are prepared here: the query is built once with named
 * placeholders where its values go, compiled once, and each call only binds the values. The
 * query keeps Kysely's types and both dialects; only its shape is fixed (no `in` lists, no
 * optional clauses: a query whose SQL changes with its values cannot be prepared).
 *
 * @module
 */
import type { Compilable, CompiledQuery, Kysely } from 'kysely'

import type { Database } from './schema.ts'
import { tableChangesOf, tablesOf } from './table-changes.ts'

const NAME = Symbol('placeholder')

interface Placeholder {
  readonly [NAME]: string
}

const isPlaceholder = (value: unknown): value is Placeholder =>
  typeof value === 'object' && value !== null && NAME in value

export interface PreparedQuery<Args, Row> {
  /** Every row; `on` runs it inside a transaction. */
  all(args: Args, on?: Kysely<Database>): Promise<Row[]>
  /** The first row, or undefined. */
  first(args: Args, on?: Kysely<Database>): Promise<Row | undefined>
}

export interface PrepareOptions {
  /**
   * Keep what the query read, and answer the same values from memory while none of the tables
   * it reads changed (`table-changes.ts`): for the reads every request or run makes of rows
   * that seldom change. Only on a database this process alone writes (else it always reads),
   * and never inside a transaction. Rows kept are frozen: callers must not change them.
   */
  readonly cached?: boolean
}

/**
 * How long a kept read is trusted at most, should its database be written by something else
 * after all (a tool opening the file while the server runs).
 */
const CACHED_FOR_MS = 2_000
/** Kept reads per query, at most; the oldest go first. */
const MAX_CACHED = 10_000

/**
 * Prepares `build(db, args)`, where `args` gives a placeholder for each value the query takes.
 *
 * @example
 * ```ts
 * const tenantBySlug = prepareQuery(db, (q, a: { slug: string }) =>
 *   q.selectFrom('tenants').selectAll().where('slug', '=', a.slug),
 * )
 * const tenant = await tenantBySlug.first({ slug: 'default' })
 * ```
 */
export function prepareQuery<Args extends Record<string, unknown>, Row>(
  db: Kysely<Database>,
  build: (db: Kysely<Database>, args: Args) => Compilable<Row>,
  options: PrepareOptions = {},
): PreparedQuery<Args, Row> {
  const placeholders = new Proxy({} as Args, {
    get: (_target, name) => ({ [NAME]: String(name) }) satisfies Placeholder,
  })
  const compiled = build(db, placeholders).compile()
  const slots = compiled.parameters.map((value) => (isPlaceholder(value) ? value[NAME] : null))
  const constants = compiled.parameters

  function bind(args: Args): CompiledQuery<Row> {
    const parameters = slots.map((name, i) => (name === null ? constants[i] : args[name]))
    return { ...compiled, parameters }
  }

  // Kept reads are invalidated by table: raw SQL could read tables no node names.
  if (options.cached && JSON.stringify(compiled.query).includes('"RawNode"'))
    throw new TypeError(`a cached query must name its tables (no raw SQL): ${compiled.sql}`)
  const changes = options.cached ? tableChangesOf(db) : undefined
  const tables = changes && [...tablesOf(compiled.query)]
  const kept = new Map<string, { rows: readonly Row[]; generation: number; at: number }>()

  async function rowsOf(args: Args, on: Kysely<Database>): Promise<readonly Row[]> {
    if (!changes || !tables || on !== db) return (await on.executeQuery(bind(args))).rows
    const key = JSON.stringify(slots.map((name) => (name === null ? null : args[name])))
    const generation = changes.generation(tables)
    const now = performance.now()
    const hit = kept.get(key)
    if (hit && hit.generation === generation && now - hit.at < CACHED_FOR_MS) return hit.rows
    const rows = (await on.executeQuery(bind(args))).rows
    // Kept only when nothing it read changed while it ran.
    if (changes.generation(tables) === generation) {
      for (const row of rows) Object.freeze(row)
      kept.delete(key)
      if (kept.size >= MAX_CACHED) kept.delete(kept.keys().next().value as string)
      kept.set(key, { rows: Object.freeze(rows), generation, at: now })
    }
    return rows
  }

  return {
    async all(args, on = db) {
      return [...(await rowsOf(args, on))]
    },
    async first(args, on = db) {
      return (await rowsOf(args, on))[0]
    },
  }
}

const MAX_SHAPES = 256

/**
 * One prepared query per shape, for a query whose SQL changes with a few fixed choices (which
 * columns an update sets, which statuses it expects): each shape is prepared on first use.
 * Shapes come from call sites, so they are few; the cache is bounded all the same.
 */
export function preparedPerShape<Shape extends unknown[], Query>(
  keyOf: (...shape: Shape) => string,
  make: (...shape: Shape) => Query,
): (...shape: Shape) => Query {
  const made = new Map<string, Query>()
  return (...shape) => {
    const key = keyOf(...shape)
    let query = made.get(key)
    if (!query) {
      if (made.size >= MAX_SHAPES) made.clear()
      query = make(...shape)
      made.set(key, query)
    }
    return query
  }
}
