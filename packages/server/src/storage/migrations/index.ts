/**
 * The ordered, append-only list of migrations. Listed in code, not loaded from files, so that
 * bundling and the test runner see the same set (design/stack.md, pitfall 5).
 *
 * @module
 */
import type { Migration, MigrationProvider } from 'kysely'

import type { DialectName } from '../database.ts'
import { migration0001Identity } from './0001-identity.ts'
import { migration0002Machines } from './0002-machines.ts'
import { migration0003Credentials } from './0003-credentials.ts'
import { migration0004Connections } from './0004-connections.ts'
import { migration0005Audit } from './0005-audit.ts'
import { migration0006RunOwner } from './0006-run-owner.ts'
import { migration0007SignIn } from './0007-sign-in.ts'
import { migration0008FlowsAndRuns } from './0008-flows-and-runs.ts'
import { migration0009DispatchIndexes } from './0009-dispatch-indexes.ts'
import { migration0010PartialRunIndexes } from './0010-partial-run-indexes.ts'
import { migration0011RunEventsByRun } from './0011-run-events-by-run.ts'
import { migration0012PartialIdempotencyIndex } from './0012-partial-idempotency-index.ts'
import { migration0013PendingCallbacks } from './0013-pending-callbacks.ts'

/** The migrations for a database; the few that differ between databases are told which. */
const migrations = (dialect: DialectName): Readonly<Record<string, Migration>> => ({
  '0001-identity': migration0001Identity,
  '0002-machines': migration0002Machines,
  '0003-credentials': migration0003Credentials,
  '0004-connections': migration0004Connections,
  '0005-audit': migration0005Audit,
  '0006-run-owner': migration0006RunOwner,
  '0007-sign-in': migration0007SignIn,
  '0008-flows-and-runs': migration0008FlowsAndRuns,
  '0009-dispatch-indexes': migration0009DispatchIndexes,
  '0010-partial-run-indexes': migration0010PartialRunIndexes,
  '0011-run-events-by-run': migration0011RunEventsByRun(dialect),
  '0012-partial-idempotency-index': migration0012PartialIdempotencyIndex,
  '0013-pending-callbacks': migration0013PendingCallbacks,
})

export const migrationsFor = (dialect: DialectName): MigrationProvider => ({
  getMigrations: () => Promise.resolve(migrations(dialect)),
})

/** The name of the newest migration: the schema version a current server expects. */
export const LATEST_MIGRATION = Object.keys(migrations('sqlite')).at(-1) ?? ''
