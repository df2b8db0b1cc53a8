export * from './package-digest.ts'
