export * from './agent-messages.ts'
export * from './machine-assertion.ts'
export * from './sign-in-token.ts'
