/**
 * Desktop flow packages: a manifest plus files, versioned and addressed by content hash.
 *
 * @module
 */
import { z } from 'zod'

import { Id, PrincipalType } from './identity-schemas.ts'

/** Largest package (decoded file contents) the server stores. */
export const MAX_FLOW_PACKAGE_BYTES = 16 * 1024 * 1024
/** Largest run inputs (their JSON) a run accepts. */
export const MAX_RUN_INPUT_BYTES = 2 * 1024 * 1024
export const DEFAULT_RUN_TIMEOUT_SECONDS = 3 * 60 * 60
export const MAX_RUN_TIMEOUT_SECONDS = 24 * 60 * 60

export const FlowRuntime = z.enum(['node', 'python', 'shell', 'exec'])
export type FlowRuntime = z.infer<typeof FlowRuntime>

export const FlowValueType = z.enum(['text', 'number', 'boolean', 'json'])

export const FlowParameter = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'letters, digits and _, at most 64'),
  type: FlowValueType.default('text'),
  required: z.boolean().default(false),
  /** Sensitive values are never shown again (run details, logs). */
  sensitive: z.boolean().default(false),
  default: z.unknown().optional(),
  description: z.string().max(1000).default(''),
})
export type FlowParameter = z.infer<typeof FlowParameter>

/** The files the machine puts in a run's workspace beside the package's: a package has none. */
export const FLOW_INPUTS_FILE = '.desklink-inputs.json'
export const FLOW_OUTPUTS_FILE = '.desklink-outputs.json'

/** A relative path inside the package, without `..` or a leading `/`. */
export const PackagePath = z
  .string()
  .min(1)
  .max(255)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').some((s) => s === '..' || s === '' || s === '.'),
    'a relative path without . or .. segments',
  )
  // NUL also separates the parts of a package's digest, which must read one way only.
  .refine(
    (p) => ![...p].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
    'a path without control characters',
  )
  .refine(
    (p) => p !== FLOW_INPUTS_FILE && p !== FLOW_OUTPUTS_FILE,
    `a path other than ${FLOW_INPUTS_FILE} and ${FLOW_OUTPUTS_FILE}, which the machine writes`,
  )

/**
 * A manifest's size, as JSON: its defaults go into every run's inputs, which are at most 2 MB,
 * and it is stored and sent whole with each version.
 */
export const MAX_MANIFEST_BYTES = 256 * 1024

export const FlowManifest = z
  .strictObject({
    name: z.string().trim().min(1).max(100),
    description: z.string().max(2000).default(''),
    runtime: FlowRuntime,
    /** The file run: a script for node, python and shell; a program for exec. */
    entry: PackagePath,
    inputs: z.array(FlowParameter).max(100).default([]),
    outputs: z.array(FlowParameter).max(100).default([]),
    needsDisplay: z.boolean().default(false),
    /** The flow's run timeout; absent, a run has its environment's `defaultRunTimeoutSeconds`. */
    timeoutSeconds: z.int().min(1).max(MAX_RUN_TIMEOUT_SECONDS).optional(),
  })
  .refine(
    (m) => new TextEncoder().encode(JSON.stringify(m)).length <= MAX_MANIFEST_BYTES,
    `the manifest is at most ${MAX_MANIFEST_BYTES / 1024} KiB as JSON, defaults and descriptions included`,
  )
export type FlowManifest = z.infer<typeof FlowManifest>

export const PackageFile = z.strictObject({
  path: PackagePath,
  executable: z.boolean().default(false),
  contentBase64: z.base64(),
})
export type PackageFile = z.infer<typeof PackageFile>

/** Pushes a package: a new flow, or a new version of the flow of that name. */
export const PushFlowRequest = z.strictObject({
  manifest: FlowManifest,
  files: z.array(PackageFile).min(1).max(2000),
})

export const FlowAccess = z.enum(['owner', 'coOwner', 'user', 'admin'])

export const DesktopFlow = z.object({
  id: Id,
  environmentId: Id,
  name: z.string(),
  description: z.string(),
  runtime: FlowRuntime,
  version: z.int(),
  contentHash: z.string(),
  sizeBytes: z.int(),
  manifest: FlowManifest,
  ownerType: PrincipalType,
  ownerId: Id,
  access: FlowAccess,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
})
export type DesktopFlow = z.infer<typeof DesktopFlow>

/** A pushed flow, with what the push did: the same content again changes nothing. */
export const PushedFlow = DesktopFlow.extend({
  pushed: z.enum(['created', 'newVersion', 'unchanged']),
})
export type PushedFlow = z.infer<typeof PushedFlow>

export const FlowShareAccess = z.enum(['coOwner', 'user'])
export const CreateFlowShareRequest = z.strictObject({
  principalType: PrincipalType,
  principalId: Id,
  access: FlowShareAccess,
})
