// Bundles the desklink CLI (which contains the server and the agent) into dist/desklink.mjs.
// Our workspace packages are bundled from their TypeScript sources; third-party dependencies
// stay external and load from node_modules.
import { readdirSync, readFileSync } from 'node:fs'

import { build } from 'esbuild'

const external = new Set()
for (const name of readdirSync('packages')) {
  const manifest = JSON.parse(readFileSync(`packages/${name}/package.json`, 'utf8'))
  for (const dep of Object.keys(manifest.dependencies ?? {})) {
    if (!dep.startsWith('@desklink/')) external.add(dep)
  }
}

await build({
  entryPoints: ['packages/cli/src/bin.ts'],
  outfile: 'dist/desklink.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: [...external].flatMap((dep) => [dep, `${dep}/*`]),
  sourcemap: 'linked',
  logLevel: 'warning',
})
