export * from './agent-messages.ts'
export * from './machine-assertion.ts'
