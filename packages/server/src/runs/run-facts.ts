/**
 * What the dispatcher reads about a run before it offers it (its connection and its flow
 * version), about a target (its machines) and about a machine (its target), and the offer a
 * machine is sent. The reads are prepared once; those of rows that seldom change are kept in
 * memory while their tables do not change (`cached`).
 *
 * @module
 */
import type { FlowManifest, MachineSettings, ServerMessage } from '@desklink/protocol'
import type { Kysely } from 'kysely'

import { type Database, prepareQuery } from '../storage/index.ts'
import type { RunRow } from './run-store.ts'

export type Offer = Extract<ServerMessage, { type: 'runOffer' }>

/** The connection of a run, as placing and offering it needs it. */
export interface ConnectionForRun {
  readonly id: string
  readonly type: 'password' | 'credential' | 'signIn'
  readonly os_account: string | null
  readonly username: string | null
  readonly credential_id: string | null
  readonly sealed_password: string | null
  readonly tenant_id: string
}

const CONNECTION_FOR_RUN = [
  'id',
  'type',
  'os_account',
  'username',
  'credential_id',
  'sealed_password',
  'tenant_id',
] as const satisfies readonly (keyof ConnectionForRun)[]

/** What an offer says of the flow version a run runs. */
export interface FlowVersionFacts {
  readonly manifest: FlowManifest
  readonly contentHash: string
}

const versionFacts = (row: { manifest: string; content_hash: string }): FlowVersionFacts => ({
  manifest: JSON.parse(row.manifest) as FlowManifest,
  contentHash: row.content_hash,
})

export function createRunFacts(db: Kysely<Database>) {
  // Every placement pass reads its target's machines, and each run its connection and flow.
  const groupMachines = prepareQuery(db, (q, a: { groupId: string }) =>
    q.selectFrom('machines').select(['id', 'name']).where('group_id', '=', a.groupId),
  )
  const connectionForRun = prepareQuery(
    db,
    (q, a: { id: string }) =>
      q.selectFrom('connections').select(CONNECTION_FOR_RUN).where('id', '=', a.id),
    { cached: true },
  )
  const flowVersion = prepareQuery(
    db,
    (q, a: { id: string }) =>
      q.selectFrom('flow_versions').select(['manifest', 'content_hash']).where('id', '=', a.id),
    { cached: true },
  )
  /** Both at once, the usual case; no row when either is gone. */
  const connectionAndVersion = prepareQuery(
    db,
    (q, a: { connectionId: string; versionId: string }) =>
      q
        .selectFrom(['connections', 'flow_versions'])
        .select([
          ...CONNECTION_FOR_RUN.map((column) => `connections.${column}` as const),
          'flow_versions.manifest',
          'flow_versions.content_hash',
        ])
        .where('connections.id', '=', a.connectionId)
        .where('flow_versions.id', '=', a.versionId),
    { cached: true },
  )
  const groupRow = prepareQuery(db, (q, a: { id: string }) =>
    q.selectFrom('machine_groups').select('id').where('id', '=', a.id),
  )
  // Every heartbeat needs its machine's target (from memory, once read).
  const machineGroup = prepareQuery(db, (q, a: { id: string }) =>
    q.selectFrom('machines').select('group_id').where('id', '=', a.id),
  )

  return {
    /** Whether a target group still exists (a deleted standalone machine takes its own). */
    groupExists: async (groupId: string): Promise<boolean> =>
      (await groupRow.first({ id: groupId })) !== undefined,

    /** The machines of a target group. */
    machinesOf: (groupId: string) => groupMachines.all({ groupId }),

    /** The group a machine belongs to; undefined for a machine that is gone. */
    groupOf: async (machineId: string): Promise<string | undefined> =>
      (await machineGroup.first({ id: machineId }))?.group_id,

    connectionOf: (id: string): Promise<ConnectionForRun | undefined> =>
      connectionForRun.first({ id }),

    /**
     * Kept in memory while no write touches flow versions: a flow deleted while its run waits
     * (its versions go with it, and a delete makes every kept read go to the database again)
     * fails the run.
     */
    versionOf: async (versionId: string): Promise<FlowVersionFacts | undefined> => {
      const row = await flowVersion.first({ id: versionId })
      return row && versionFacts(row)
    },

    /** A run's connection and flow version in one read; undefined when either is gone. */
    connectionAndVersionOf: async (
      run: RunRow,
    ): Promise<{ connection: ConnectionForRun; version: FlowVersionFacts } | undefined> => {
      const both = await connectionAndVersion.first({
        connectionId: run.connection_id,
        versionId: run.flow_version_id,
      })
      if (!both) return undefined
      const { manifest, content_hash, ...connection } = both
      return { connection, version: versionFacts({ manifest, content_hash }) }
    },
  }
}

/** The offer a machine is sent for a run. */
export function offerOf(
  run: RunRow,
  machine: { readonly settings: MachineSettings },
  version: FlowVersionFacts,
  credential: Offer['credential'],
): Offer {
  const { manifest } = version
  return {
    type: 'runOffer',
    runId: run.id,
    groupId: run.target_group_id,
    runMode: run.run_mode,
    flow: {
      contentHash: version.contentHash,
      runtime: manifest.runtime,
      entry: manifest.entry,
      needsDisplay: manifest.needsDisplay,
    },
    credential,
    sealedInputs: run.sealed_inputs,
    sensitive: [...manifest.inputs, ...manifest.outputs]
      .filter((p) => p.sensitive)
      .map((p) => p.name),
    timeoutSeconds: run.timeout_seconds,
    reuseSessions: machine.settings.reuseSessions,
  }
}
