export * from './agent-messages.ts'
export * from './machine-assertion.ts'
export * from './session-rules.ts'
export * from './sign-in-token.ts'
