/**
 * Table types shared by every store. Both databases use the same column kinds: text ids and
 * ISO-8601 UTC timestamps set by the application, integers 0/1 for flags, text for JSON. That
 * keeps row mapping identical on SQLite and PostgreSQL (see design/stack.md, pitfalls 1-3).
 *
 * @module
 */
export interface TenantTable {
  id: string
  slug: string
  display_name: string
  status: 'active' | 'deactivated'
  created_at: string
}

export interface SigningKeyTable {
  kid: string
  tenant_id: string
  alg: string
  public_jwk: string
  /** The private JWK sealed with the master key (AAD = kid). Never plaintext. */
  private_jwk_sealed: string
  status: 'active' | 'retired'
  created_at: string
}

export interface EnvironmentTable {
  id: string
  tenant_id: string
  name: string
  description: string
  created_at: string
  /** JSON RunSettings overrides; null = the defaults. */
  run_settings: string | null
}

export interface UserTable {
  id: string
  tenant_id: string
  username: string
  display_name: string
  password_hash: string
  status: 'active' | 'deactivated'
  is_tenant_admin: number
  is_platform_admin: number
  created_at: string
  updated_at: string
}

export interface ServicePrincipalTable {
  id: string
  tenant_id: string
  name: string
  description: string
  status: 'active' | 'deactivated'
  created_at: string
  updated_at: string
}

export interface SpCredentialTable {
  id: string
  tenant_id: string
  service_principal_id: string
  kind: 'secret' | 'certificate'
  /** SHA-256 of a client secret, or null for a certificate. */
  secret_hash: string | null
  /** The public JWK of a certificate credential, or null for a secret. */
  public_jwk: string | null
  /** Thumbprint of the certificate key (RFC 7638), or the first characters of a secret's id. */
  hint: string
  expires_at: string | null
  created_at: string
}

export interface RoleAssignmentTable {
  id: string
  tenant_id: string
  environment_id: string
  principal_type: 'user' | 'servicePrincipal'
  principal_id: string
  role: string
  created_at: string
}

export interface AuthorizationCodeTable {
  code_hash: string
  tenant_id: string
  client_id: string
  user_id: string
  redirect_uri: string
  scope: string
  code_challenge: string | null
  code_challenge_method: string | null
  /** The resource the code was asked for (a machine group); null for the API. */
  audience: string | null
  expires_at: string
  created_at: string
}

export interface RefreshTokenTable {
  token_hash: string
  family_id: string
  tenant_id: string
  client_id: string
  principal_type: 'user' | 'servicePrincipal'
  principal_id: string
  scope: string
  /** The resource the token family was granted for (a machine group); null for the API. */
  audience: string | null
  expires_at: string
  rotated_at: string | null
  revoked_at: string | null
  created_at: string
}

export interface UsedAssertionTable {
  jti_hash: string
  tenant_id: string
  expires_at: string
}

export interface MachineGroupTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  description: string
  type: 'standalone' | 'standard'
  /** Base64url X25519 public key; null until the first member creates it. */
  public_key: string | null
  /** The group private key wrapped with the group password on a member machine. */
  key_package: string | null
  key_created_at: string | null
  /** JSON of MachineSettings. */
  settings: string
  owner_type: 'user' | 'servicePrincipal'
  owner_id: string
  created_at: string
}

export interface MachineTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  description: string
  standalone_group_id: string
  group_id: string
  /** Base64url raw Ed25519 public key. */
  identity_public_key: string
  hostname: string
  os: string
  agent_version: string
  /** JSON of MachineSettings. */
  settings: string
  /** JSON array of SessionInfo, from the last heartbeat. */
  sessions: string
  connected: number
  last_heartbeat_at: string | null
  owner_type: 'user' | 'servicePrincipal'
  owner_id: string
  created_at: string
}

export interface RegistrationTokenTable {
  token_hash: string
  tenant_id: string
  environment_id: string
  created_by_type: 'user' | 'servicePrincipal'
  created_by_id: string
  expires_at: string
  used_at: string | null
  machine_id: string | null
  created_at: string
}

export interface ResourceShareTable {
  id: string
  tenant_id: string
  resource_type: 'machine' | 'machineGroup' | 'credential' | 'connection' | 'desktopFlow'
  resource_id: string
  principal_type: 'user' | 'servicePrincipal'
  principal_id: string
  access: 'coOwner' | 'user' | 'userCanShare' | 'use' | 'edit'
  created_at: string
}

export interface SecretStoreTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  type: 'hashicorpVault' | 'azureKeyVault' | 'cyberArkCcp'
  /** The full settings, JSON sealed with the master key (AAD = id). */
  settings_sealed: string
  /** JSON of the non-secret settings, for display. */
  summary: string
  created_at: string
}

export interface CredentialTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  description: string
  usage: 'connection' | 'flow'
  /** JSON: {"value"} or {"fromStore": reference}. */
  username: string
  /** JSON reference; for the built-in store it holds the sealed value, never plaintext. */
  secret_ref: string
  owner_type: 'user' | 'servicePrincipal'
  owner_id: string
  created_at: string
  updated_at: string
}

export interface CyberArkApplicationTable {
  group_id: string
  tenant_id: string
  app_id: string
  description: string
  certificate_subject: string
  /** Client certificate and key, sealed to the group public key (HPKE). */
  sealed_certificate: string
  created_at: string
}

export interface ConnectionTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  target_group_id: string
  type: 'password' | 'credential' | 'signIn'
  username: string | null
  /** The password sealed to the target group's public key (HPKE); never plaintext. */
  sealed_password: string | null
  credential_id: string | null
  /** Sign-in connections: the refresh token, sealed under the master key (SecretBox). */
  sealed_refresh_token: string | null
  owner_type: 'user' | 'servicePrincipal'
  owner_id: string
  run_owner_type: 'user' | 'servicePrincipal'
  run_owner_id: string
  /** 1 once a service principal was set as run owner. */
  run_owner_explicit: number
  status: 'Connected' | 'Error' | 'FixConnection'
  /** JSON {code, message, details} of the last failed test or breakage. */
  status_error: string | null
  os_account: string | null
  last_tested_at: string | null
  last_used_at: string | null
  created_at: string
  updated_at: string
}

export interface AuditEventTable {
  id: string
  tenant_id: string
  environment_id: string | null
  actor_type: 'user' | 'servicePrincipal'
  actor_id: string
  action: string
  target_type: string
  target_id: string
  outcome: 'success' | 'denied'
  /** JSON; never secrets. */
  details: string
  created_at: string
}

export interface DesktopFlowTable {
  id: string
  tenant_id: string
  environment_id: string
  name: string
  owner_type: 'user' | 'servicePrincipal'
  owner_id: string
  current_version: number
  created_at: string
  updated_at: string
}

export interface FlowVersionTable {
  id: string
  tenant_id: string
  flow_id: string
  version: number
  /** SHA-256 (hex) over the manifest and the files: the package's address. */
  content_hash: string
  /** JSON FlowManifest. */
  manifest: string
  /** JSON [{path, executable, contentBase64}]. */
  files: string
  size_bytes: number
  created_at: string
}

export type RunStatusValue = 'Queued' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled'

export interface RunTable {
  id: string
  tenant_id: string
  environment_id: string
  flow_id: string
  flow_version_id: string
  connection_id: string
  target_group_id: string
  caller_type: 'user' | 'servicePrincipal'
  caller_id: string
  connection_owner_id: string
  run_owner_type: 'user' | 'servicePrincipal'
  run_owner_id: string
  run_mode: 'attended' | 'unattended'
  priority: 'high' | 'normal' | 'low'
  /** 0 high, 1 normal, 2 low: the queue sorts on it. */
  priority_rank: number
  status: RunStatusValue
  /** The inputs as JSON, sealed to the target group's key (HPKE, context `run:<id>`). */
  sealed_inputs: string
  /** The inputs as shown: sensitive values replaced by "***". */
  shown_inputs: string
  timeout_seconds: number
  callback_url: string | null
  idempotency_key: string | null
  parent_run_id: string | null
  requested_at: string
  moved_to_top_at: string | null
  /**
   * The first key of the queue order: 0, or minus the move's time in epoch ms for a run moved
   * to the top (the latest move sorts first). One ascending key lets a queue be walked in order.
   */
  queue_rank: number
  queue_deadline: string
  /** Set when offered: the machine the run belongs to from then on. */
  machine_id: string | null
  offered_at: string | null
  lease_expires_at: string | null
  started_at: string | null
  finished_at: string | null
  os_account: string | null
  exit_code: number | null
  /** JSON, sensitive outputs replaced by "***". */
  outputs: string | null
  /** JSON {code, message, details?}. */
  error: string | null
  /** JSON [{machineId, machineName, code, reason}]: the last refusal of each machine. */
  refusals: string | null
}

/** A callback a run that ended is owed (migration 0013). */
export interface PendingCallbackTable {
  run_id: string
  tenant_id: string
  ended_at: string
}

export interface RunEventTable {
  id: string
  tenant_id: string
  run_id: string
  at: string
  kind: string
  details: string | null
}

/** The whole schema, as Kysely sees it. */
export interface Database {
  tenants: TenantTable
  signing_keys: SigningKeyTable
  environments: EnvironmentTable
  users: UserTable
  service_principals: ServicePrincipalTable
  sp_credentials: SpCredentialTable
  role_assignments: RoleAssignmentTable
  authorization_codes: AuthorizationCodeTable
  refresh_tokens: RefreshTokenTable
  used_assertions: UsedAssertionTable
  machine_groups: MachineGroupTable
  machines: MachineTable
  registration_tokens: RegistrationTokenTable
  resource_shares: ResourceShareTable
  secret_stores: SecretStoreTable
  credentials: CredentialTable
  cyberark_applications: CyberArkApplicationTable
  connections: ConnectionTable
  audit_events: AuditEventTable
  desktop_flows: DesktopFlowTable
  flow_versions: FlowVersionTable
  runs: RunTable
  run_events: RunEventTable
  pending_callbacks: PendingCallbackTable
}

/**
 * Tables no foreign key points at: a delete from them changes no other table (nothing cascades
 * from them), so reads of other tables kept in memory stay. The rows they hold come and go all
 * the time (run events past retention, callbacks made).
 */
export const UNREFERENCED_TABLES: readonly (keyof Database)[] = ['run_events', 'pending_callbacks']
