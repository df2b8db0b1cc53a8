export * from './group-sealing.ts'
