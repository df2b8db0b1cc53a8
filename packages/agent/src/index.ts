/**
 * The Desklink agent: registration, the channel to the server, sessions, groups and (later)
 * running flows as the connection's OS account.
 *
 * @module
 */
export { mapUsername } from './accounts/map-username.ts'
export { AgentError } from './agent-error.ts'
export type { AgentLogger } from './agent-logger.ts'
export type { AgentMode, AgentRunner } from './agent-runner.ts'
export { createAgentRunner } from './agent-runner.ts'
export type { ChannelMode } from './channel/agent-channel.ts'
export { backoffDelay } from './channel/agent-channel.ts'
export type { AgentConfig } from './config/agent-config.ts'
export { AGENT_DEFAULTS, resolveAgentConfig } from './config/agent-config.ts'
export { joinGroup, leaveGroup, MIN_GROUP_PASSWORD_LENGTH } from './groups/group-membership.ts'
export { unwrapGroupKey, wrapGroupKey } from './groups/key-package.ts'
export { generateIdentityKey, signMachineAssertion } from './keys/machine-keys.ts'
export type { PamOutcome } from './pam/pam-check.ts'
export { pamCheck } from './pam/pam-check.ts'
export type { AgentPolicy } from './policy/agent-policy.ts'
export { assertTenantAllowed, loadAgentPolicy } from './policy/agent-policy.ts'
export { AGENT_VERSION, registerMachine } from './registration/register-machine.ts'
export type { CcpAccount, CcpRequest } from './secrets/cyberark-ccp.ts'
export { fetchFromCyberArk } from './secrets/cyberark-ccp.ts'
export type { DeliveredCredential } from './secrets/resolved-credential.ts'
export { openCredential } from './secrets/resolved-credential.ts'
export { createX11SessionProvider } from './sessions/x11-sessions.ts'
export type { AgentState, StateStore } from './state/agent-state.ts'
export { createStateStore } from './state/agent-state.ts'
