/**
 * Codes the agent reports on the machine itself, before or without asking the server. Where
 * Power Automate has a name for the condition, the code is that name (reference §4.8).
 *
 * @module
 */

export const AGENT_ERROR_CODES = {
  UnauthorizedRegistrationToNonAllowListedTenant:
    'The tenant of this registration token is not in allowedTenants of the agent policy.',
  RegistrationNoLongerAllowed:
    'The tenant this machine is registered to is no longer in allowedTenants of the agent policy (enforceOnStart).',
  AlreadyRegistered:
    'This machine is already registered; pass --force to replace the registration.',
  NotRegistered: 'This machine is not registered; run desklink agent register first.',
  MachineDeleted: 'The machine was deleted on the server; the agent no longer acts for it.',
  InvalidRegistrationToken: 'The registration token is not in the expected form.',
  UnsafePolicyFile:
    'The agent policy file must be owned by root (or the agent user) and writable by nobody else.',
  InvalidPolicy: 'The agent policy file is not valid.',
  GroupPasswordIncorrect: 'The group password is incorrect.',
  GroupKeyMismatch: 'The group key package does not match the group public key.',
} as const

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES
