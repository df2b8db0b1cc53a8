export type { CliIo } from './io.ts'
export { CliError } from './io.ts'
export { buildProgram, CLI_VERSION, runCli } from './program.ts'
