/**
 * The sample desktop flow `desklink up` installs, so a first run needs nothing but a
 * connection: a shell script that greets, and reports who and where it ran as.
 *
 * @module
 */
import { PushFlowRequest } from '@desklink/protocol'

export const SAMPLE_FLOW_NAME = 'hello-desklink'

const SCRIPT = `#!/bin/sh
# The sample desktop flow: reads its inputs, writes a file in its workspace, reports outputs.
set -eu
name=$(sed -n 's/.*"name":"\\([^"]*\\)".*/\\1/p' "$DESKLINK_INPUTS")
echo "Hello, \${name:-world}" > greeting.txt
printf '{"greeting":"%s","user":"%s","host":"%s"}\\n' \\
  "$(cat greeting.txt)" "$(id -un)" "$(hostname)" > "$DESKLINK_OUTPUTS"
`

export const SAMPLE_FLOW = PushFlowRequest.parse({
  manifest: {
    name: SAMPLE_FLOW_NAME,
    description: 'Greets, and says which OS account and machine it ran as.',
    runtime: 'shell',
    entry: 'hello.sh',
    inputs: [
      {
        name: 'name',
        type: 'text',
        default: 'world',
        description: 'Who to greet.',
      },
    ],
    outputs: [
      { name: 'greeting', type: 'text' },
      { name: 'user', type: 'text', description: 'The OS account the flow ran as.' },
      { name: 'host', type: 'text', description: 'The machine it ran on.' },
    ],
    timeoutSeconds: 300,
  },
  files: [
    {
      path: 'hello.sh',
      executable: true,
      contentBase64: Buffer.from(SCRIPT).toString('base64'),
    },
  ],
})
