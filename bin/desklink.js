#!/usr/bin/env node
// Entry point of the desklink command: runs the bundle that `npm run build` makes.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const bundle = fileURLToPath(new URL('../dist/desklink.mjs', import.meta.url))
if (!existsSync(bundle)) {
  process.stderr.write('desklink is not built yet: run `npm run build` in the repository first.\n')
  process.exit(1)
}
await import(bundle)
