/**
 * The CLI process's composition root: the only place that reads `process`.
 *
 * @module
 */
import { homedir } from 'node:os'

import type { CliIo } from './io.ts'
import { runCli } from './program.ts'

const io: CliIo = {
  env: process.env,
  cwd: process.cwd(),
  homeDir: homedir(),
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  readStdin: async () => {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  },
  waitForStop: () =>
    new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    }),
  fetch: globalThis.fetch,
  selfCommand: [process.execPath, ...process.argv.slice(1, 2)],
}

// A reader that went away (`desklink runs list | head -1`) ends the output, without a trace:
// with the command's own status once it has one, else as a process a closed pipe stops (141).
const onClosedPipe = (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error
  process.exit(process.exitCode ?? 141)
}
process.stdout.on('error', onClosedPipe)
process.stderr.on('error', onClosedPipe)

process.exitCode = await runCli(process.argv.slice(2), io)
// Let stdout drain, then end even if a stray handle remains (for example a closed pool's timer).
setImmediate(() => process.exit())
