/**
 * Codes a run ends with (its `error.code`) or waits for (a machine's reason in `waiting` and in
 * `NoCandidateMachine`'s sub-errors), besides the API's own codes (`error-codes.ts`), which a
 * run can end with too (`RunOwnerLacksAccess`, `GroupIsEmpty`, ...). They have no HTTP status:
 * the run is read with 200. Power Automate's names where it has one (reference §4.8).
 *
 * @module
 */
import type { AgentErrorCode } from './agent-error-codes.ts'
import type { ErrorCode } from './error-codes.ts'

export interface RunCodeEntry {
  /** What happened, for people. */
  readonly meaning: string
  /** What to do about it. */
  readonly remediation: string
}

export const RUN_CODES = {
  // A run's end, decided by the server.
  NoCandidateMachine: {
    meaning: 'The run waited its whole queue timeout and no machine took it.',
    remediation:
      "Read each machine's reason (error.details.subErrors; the CLI's machines line) and fix it: bring the machine online, end maintenance, free a slot, sign the user in; for BlockedByQueueHead, fix what holds the head, move the run to the top or turn on extended queue prioritization. Or raise the queue timeout (desklink runs settings --queue-timeout).",
  },
  DesktopFlowsActionTimeout: {
    meaning: 'The run did not end within its timeout; its processes were stopped.',
    remediation: 'Give the run a longer timeout (--timeout, or the flow’s timeoutSeconds).',
  },
  RunLeaseExpired: {
    meaning:
      'The machine stopped reporting the run (its agent stopped, crashed or lost the network).',
    remediation: 'Check the agent on the machine (desklink agent status, its log), then run again.',
  },
  FlowNotFound: {
    meaning: 'The flow was deleted before the run started.',
    remediation: 'Push the flow again and start a new run.',
  },
  ConnectionNotFound: {
    meaning: 'The connection was deleted before the run started.',
    remediation: 'Create the connection again and start a new run.',
  },
  CredentialUnavailable: {
    meaning:
      "The connection's credential could not be read from its store when the run was offered.",
    remediation:
      'Check the credential and its store (desklink credentials test C), then run again.',
  },
  Cancelled: {
    meaning: 'The run was cancelled (by a person, or with its parent run).',
    remediation: 'Nothing to fix; start a new run if it is still wanted.',
  },
  // A run's end, decided on the machine.
  WindowsIdentityIncorrect: {
    meaning:
      "The connection's password no longer authenticates the account on the machine (PAM), or the account cannot be mapped.",
    remediation:
      'Update the connection with the current password (desklink connections update ID --username U --password-stdin).',
  },
  FlowStartFailed: {
    meaning: "The flow's runtime could not be started on the machine.",
    remediation: 'Install the runtime the manifest names (node, python3, sh) on the machine.',
  },
  FlowFailed: {
    meaning: 'The flow exited with a code other than 0; the message ends with its last output.',
    remediation: 'Fix the flow; its exit code is in exitCode.',
  },
  InvalidFlowOutputs: {
    meaning:
      'The outputs file is not one JSON object (at most 1 MiB) in a regular file of the run account, or its outputs do not match the manifest: a required output is missing, or one is not of its declared type. The message names the output.',
    remediation:
      'Write one JSON object to the file named by DESKLINK_OUTPUTS, with every required output, each of the type the manifest declares.',
  },
  WorkDirNotReachable: {
    meaning: 'Run accounts cannot reach the agent’s work directory.',
    remediation:
      'Make its parents searchable by others (chmod o+x), or set DESKLINK_AGENT_WORK_DIR.',
  },
  DisplayUnavailable: {
    meaning:
      'The flow needs a display (needsDisplay), and the run had none: an unattended run outside the user’s session, or a session without a display.',
    remediation:
      'Run it attended in a session of the user with a display, or turn on reuse sessions so that unattended runs go into the user’s active session.',
  },
  WorkDirUnsafe: {
    meaning:
      'The agent’s work directory is not the agent’s alone: it is a link or not a directory, it belongs to another account, or others may write in it or in a directory above it. No flow runs on the machine until it is fixed.',
    remediation:
      'Remove the directory (the agent makes it anew), or make it root’s and writable by root alone (chown root: DIR; chmod 711 DIR); or set DESKLINK_AGENT_WORK_DIR to a place only root can make.',
  },
  AgentNotPrivileged: {
    meaning: 'The agent does not run as root, so it cannot run flows as another account.',
    remediation: 'Run the agent as root (as its systemd service does: docs/agent.md).',
  },
  AgentRestarted: {
    meaning: 'The agent restarted while the run was going on, and its processes were gone.',
    remediation: 'Run again; see the agent’s log for why it restarted.',
  },
  AgentError: {
    meaning: 'Something went wrong in the agent while it started the run.',
    remediation: 'See the message and the agent’s log on the machine.',
  },
  MachineNotJoined: {
    meaning:
      'The agent policy joins this machine to no tenant or domain, so no sign-in maps to an account there.',
    remediation:
      'Set join in the agent policy (docs/agent.md), or use a username-and-password connection.',
  },
  UnallowedTenantForConnectWithSignIn: {
    meaning: 'The agent policy does not allow sign-in connections of this tenant.',
    remediation: 'Have the agent policy on the machine trust the tenant (docs/agent.md).',
  },
  // Why a machine does not take a run now (waiting reasons and sub-errors).
  MachineInMaintenance: {
    meaning: 'The machine is in maintenance mode.',
    remediation: 'End maintenance (desklink machines update M --maintenance off).',
  },
  UIFlowAlreadyRunning: {
    meaning:
      'Every unattended slot of the machine is busy, or an attended run is going on in the user’s session.',
    remediation: 'Wait, raise the machine’s slots, or add machines to the group.',
  },
  AttendedUserNotLoggedIn: {
    meaning: 'Attended: the connection’s user is not signed in on the machine.',
    remediation: 'Sign the user in on the machine.',
  },
  AttendedUserSessionNotActive: {
    meaning: 'Attended: the user’s session is locked or disconnected.',
    remediation: 'Unlock the session.',
  },
  SessionExistsForTheUserWhenUnattended: {
    meaning: 'Unattended: the user is signed in on the machine.',
    remediation: 'Sign the user out, or turn on reuse sessions for the machine.',
  },
  UnattendedUserSessionLocked: {
    meaning: 'Unattended: the user’s session on the machine is locked.',
    remediation: 'Sign the user out, or turn on reuse sessions for the machine.',
  },
  UnattendedUserSessionDisconnected: {
    meaning: 'Unattended: the user’s session on the machine is disconnected.',
    remediation: 'Sign the user out, or turn on reuse sessions for the machine.',
  },
  BlockedByQueueHead: {
    meaning: 'The machine could take the run, but the run at the head of the queue goes first.',
    remediation:
      'Fix what holds the head (blockedBy), move this run to the top, or turn on extended queue prioritization.',
  },
  PackageUnavailable: {
    meaning: 'The machine could not get the flow’s package and turned the run down.',
    remediation: 'Check that the machine reaches the server; see the agent’s log.',
  },
  RuntimeUnavailable: {
    meaning:
      'The machine cannot run the flow’s runtime (python3 is not on the path flows run with).',
    remediation:
      'Install the runtime on the machine (python3 in /usr/local/bin, /usr/bin or /bin), or target machines that have it.',
  },
  SecretUnavailable: {
    meaning: 'The machine could not open the run’s secrets: it does not hold its group’s key.',
    remediation: 'Join the machine to the group again with the group password.',
  },
} as const satisfies Record<string, RunCodeEntry>

/** A code a run can end or wait with: one of these, or one of the API's or the agent's. */
export type RunCode = keyof typeof RUN_CODES | ErrorCode | AgentErrorCode
