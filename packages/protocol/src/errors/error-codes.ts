/**
 * The closed table of API error codes: every error the API answers with carries one of these.
 * Codes are part of the public API: they never change meaning and are documented in
 * docs/errors.md. Where Power Automate has a name for a condition, the code is that name.
 *
 * @module
 */

/** One row of the error table. */
export interface ErrorCodeEntry {
  /** HTTP status the API answers with. */
  readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503
  /** The default, user-facing message. Never contains request data. */
  readonly message: string
  /** What the caller can do about it. */
  readonly remediation: string
}

/**
 * @example
 * ```ts
 * ERROR_CODES.ResourceNotFound.status // 404
 * ```
 */
export const ERROR_CODES = {
  InvalidRequestBody: {
    status: 400,
    message: 'The request body does not match the expected schema.',
    remediation: 'Fix the fields listed in details and send the request again.',
  },
  InvalidJson: {
    status: 400,
    message: 'The request body is not valid JSON.',
    remediation: 'Send a JSON object with Content-Type: application/json.',
  },
  InvalidQueryParameter: {
    status: 400,
    message: 'A query or path parameter is not valid.',
    remediation: 'Fix the parameters listed in details.',
  },
  UnsupportedMediaType: {
    status: 415,
    message: 'The request body must be JSON.',
    remediation: 'Send Content-Type: application/json.',
  },
  IdempotencyKeyReused: {
    status: 422,
    message:
      'This idempotency key was used for another request: another flow, connection, run mode, parent, callback, timeout or inputs.',
    remediation:
      'Use a new key for a new run; to get the first run, send its request again unchanged (details name the run and what differs).',
  },
  PayloadTooLarge: {
    status: 413,
    message: 'The request body is larger than the server accepts.',
    remediation: 'Send a smaller body; the limit is in details.',
  },
  AuthenticationRequired: {
    status: 401,
    message: 'A bearer access token is required.',
    remediation: 'Sign in with `desklink login` and send the token in the Authorization header.',
  },
  InvalidToken: {
    status: 401,
    message: 'The access token is invalid, expired, or not meant for this API.',
    remediation: 'Get a new token from the tenant token endpoint.',
  },
  InsufficientScope: {
    status: 403,
    message: 'The access token does not carry the scope this operation needs.',
    remediation: 'Request a token with the scope named in details.',
  },
  PrincipalDeactivated: {
    status: 403,
    message: 'The principal is deactivated.',
    remediation: 'Ask a tenant administrator to reactivate the account.',
  },
  Forbidden: {
    status: 403,
    message: 'The principal lacks the privilege this operation needs.',
    remediation: 'Ask an administrator for the role named in details.',
  },
  ResourceNotFound: {
    status: 404,
    message: 'The resource does not exist.',
    remediation: 'Check the identifier; list the collection to find the right one.',
  },
  RouteNotFound: {
    status: 404,
    message: 'No API route matches this path.',
    remediation: 'See /api/openapi.json for the routes this server has.',
  },
  MethodNotAllowed: {
    status: 405,
    message: 'This route does not accept the HTTP method.',
    remediation: 'See /api/openapi.json for the methods this route accepts.',
  },
  NameAlreadyInUse: {
    status: 409,
    message: 'Another resource of this kind already has that name.',
    remediation: 'Choose another name.',
  },
  RoleAssignmentExists: {
    status: 409,
    message: 'The principal already holds this role in the environment.',
    remediation: 'Nothing to do; list the role assignments to see it.',
  },
  LastAdministrator: {
    status: 409,
    message: 'The last active administrator cannot be removed or deactivated.',
    remediation: 'Make another principal an administrator first.',
  },
  InvalidCertificate: {
    status: 400,
    message: 'The certificate or public key could not be read.',
    remediation:
      'Send an SPKI PEM public key or an X.509 certificate in PEM form (EC P-256 or Ed25519).',
  },
  RegistrationTokenInvalid: {
    status: 401,
    message: 'The registration token is unknown, expired or already used.',
    remediation:
      'Create a new registration token (valid for one hour, usable once) and register again.',
  },
  MachineAuthenticationFailed: {
    status: 401,
    message: 'The machine could not be authenticated.',
    remediation:
      'The machine may have been deleted or re-registered; register it again with `desklink agent register`.',
  },
  MachineGroupFull: {
    status: 409,
    message: 'The machine group already has as many machines as it may.',
    remediation: 'Remove a machine from the group or use another group; the limit is in details.',
  },
  GroupKeyProofFailed: {
    status: 403,
    message: 'The machine did not prove that it holds the group key.',
    remediation: 'Join again with the right group password.',
  },
  GroupKeyAlreadyCreated: {
    status: 409,
    message: 'Another machine created the group key first.',
    remediation: 'Join again: the group key now exists and the group password unlocks it.',
  },
  MachineAlreadyInGroup: {
    status: 409,
    message: 'The machine is already in a machine group.',
    remediation: 'Leave the current group first.',
  },
  MachineNotInGroup: {
    status: 409,
    message: 'The machine is not in a machine group.',
    remediation: 'Nothing to do.',
  },
  SettingsInheritedFromGroup: {
    status: 409,
    message:
      'This machine takes its run settings from its machine group; only its maintenance mode is its own.',
    remediation:
      'Change the settings on the machine group (details.settings names them), or remove the machine from the group.',
  },
  SecretReadDenied: {
    status: 403,
    message: 'User is not authorized to read secrets from the store.',
    remediation:
      'Grant the store identity read access to the secret, or pick a secret it can read.',
  },
  SecretNotFound: {
    status: 422,
    message: 'The secret does not exist in the store.',
    remediation: 'Check the path, key, name or version of the secret reference.',
  },
  SecretStoreUnreachable: {
    status: 502,
    message: 'The secret store could not be reached or answered with an error.',
    remediation:
      'Check the store address, its TLS certificate and that it is up; details say what failed.',
  },
  NoListenerConnected: {
    status: 409,
    message: 'No machine of the target is connected, so the connection cannot be tested.',
    remediation: 'Start the agent on a machine of the target (desklink agent run) and try again.',
  },
  ConnectionNotShareable: {
    status: 409,
    message:
      'Desktop flows connections cannot be shared with users; only a connection whose run owner is a service principal can be shared, with service principals.',
    remediation:
      'Set a service principal as run owner first, and share with service principals (Can use or Can edit).',
  },
  SignInFailed: {
    status: 400,
    message: 'The sign-in for this connection could not be completed.',
    remediation:
      "Sign in again (the code is single-use and lasts 5 minutes), as yourself, for the connection's target.",
  },
  SignInExpired: {
    status: 409,
    message: 'The sign-in of this connection is no longer valid (expired or revoked).',
    remediation: 'Sign in again: desklink connections update <id> --sign-in.',
  },
  SignInRunOwnerNotAllowed: {
    status: 409,
    message:
      'A connect-with-sign-in connection runs as the person who signed in; it takes no run owner.',
    remediation:
      'Use a username and password or credential connection for a service-principal run owner.',
  },
  FlowPackageTooLarge: {
    status: 413,
    message: 'The desktop flow package is larger than 16 MB.',
    remediation: 'Leave large data out of the package; flows can read it at run time.',
  },
  FlowNameInUse: {
    status: 409,
    message: 'A desktop flow of this name exists and you may not push new versions of it.',
    remediation: 'Pick another name, or ask its owner to share it with you as co-owner.',
  },
  InvalidFlowInputs: {
    status: 400,
    message: 'The run inputs do not match the inputs of the desktop flow.',
    remediation:
      'Fix the inputs listed in details.problems (desklink flows show <flow> lists them).',
  },
  RunModeNotAllowedForConnection: {
    status: 400,
    message: 'A connect-with-sign-in connection runs attended only.',
    remediation: 'Run attended, or use a username and password or credential connection.',
  },
  XrmMachineGroupNotFound: {
    status: 404,
    message: "The connection's target machine or machine group no longer exists.",
    remediation: 'Create the connection again for an existing machine or group.',
  },
  GroupIsEmpty: {
    status: 400,
    message: "The connection's target machine group has no machines.",
    remediation: 'Add a machine to the group (desklink agent join-group) and run again.',
  },
  UIFlowRunQueueFull: {
    status: 409,
    message: "The desktop flow run queue is full. Run queue max size: '500'",
    remediation: 'Wait for queued runs to finish, or add machines to the group.',
  },
  DesktopFlowsActionThrottled: {
    status: 429,
    message: 'Too many runs were requested through this connection in the last minute.',
    remediation:
      'Try again after retryAfterSeconds (in details and in the Retry-After header); the limit is in details, and environment administrators set it (runsPerMinutePerConnection).',
  },
  RunOwnerLacksAccess: {
    status: 403,
    message:
      "The connection's run owner may not use the target, read the flow or read the credential.",
    remediation:
      'Share the target (user), the flow (user) and the credential (user) with the run owner.',
  },
  PasswordlessTokenExpiry: {
    status: 409,
    message:
      'The sign-in token handed over when the run was requested expired before a machine took it.',
    remediation: 'Run asynchronously (without wait): the token is then minted when the run starts.',
  },
  RunNotCancellable: {
    status: 409,
    message: 'The run has already ended.',
    remediation: 'Nothing to cancel; its status says how it ended.',
  },
  RunNotQueued: {
    status: 409,
    message: 'Only a queued run can change priority or move in the queue.',
    remediation: 'Check the run status.',
  },
  RunOwnerProofRequired: {
    status: 403,
    message: 'The service principal must prove it agrees to be the run owner.',
    remediation:
      'Call as that service principal, or send an assertion signed with its certificate key (aud connection:<id>).',
  },
  SecretStoreInUse: {
    status: 409,
    message: 'Credentials still use this secret store.',
    remediation: 'Delete or replace the credentials that use it first.',
  },
  CredentialInUse: {
    status: 409,
    message: 'Connections still use this credential.',
    remediation:
      'Delete the connections listed in details first, or delete it with force (desklink credentials delete <id> --force): they then fail with CredentialDeleted.',
  },
  CredentialDeleted: {
    status: 409,
    message: "The connection's credential was deleted.",
    remediation: 'Create the connection again, with another credential or a password.',
  },
  CredentialReferenceImmutable: {
    status: 400,
    message: 'The username and secret of a credential cannot change after it is created.',
    remediation: 'Change the value in the store, or create a new credential.',
  },
  CyberArkOnSharedResource: {
    status: 409,
    message:
      'A CyberArk application cannot be configured on a machine or group shared with others.',
    remediation: 'Stop sharing the machine or group first.',
  },
  ServiceUnavailable: {
    status: 503,
    message: 'The server is not ready, or cannot reach its database right now.',
    remediation:
      'Retry after the seconds in Retry-After; /readyz says when the server is ready. Retry a run request with the same idempotency key.',
  },
  InternalError: {
    status: 500,
    message: 'The server failed to process the request.',
    remediation: 'Retry; if it persists, report the requestId to the operator.',
  },
} as const satisfies Record<string, ErrorCodeEntry>

/** A stable API error code. */
export type ErrorCode = keyof typeof ERROR_CODES

/** Type guard for values read off the wire. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value)
}

/** The one error body every API route answers with. */
export interface ApiErrorBody {
  readonly error: {
    readonly code: ErrorCode
    readonly message: string
    readonly details?: unknown
  }
  readonly requestId: string
}
