export * from './flow-values.ts'
export * from './package-digest.ts'
