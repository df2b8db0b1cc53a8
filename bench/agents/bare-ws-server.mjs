// The baseline: the least a server must do to hold the same agent sockets. It is wired the way
// the Desklink server is (a node:http server whose `upgrade` event is handed to a `noServer`
// ws WebSocketServer, no compression, the same maximum message size), answers `hello` with a
// welcome of the same shape and parses every message, but keeps no state of its own, checks
// no credentials and touches no database. Memory above this is what Desklink adds per agent.
//
// Started by run.mjs with the memory probe preloaded; reports its port over IPC.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'

import { WebSocketServer } from 'ws'

const CHANNEL_PATH = '/api/v1/agent/channel'
const MAX_MESSAGE_BYTES = 256 * 1024 // AGENT_MAX_MESSAGE_BYTES of the protocol package

const welcome = JSON.stringify({
  type: 'welcome',
  protocolVersion: 1,
  machineId: randomUUID(),
  groupId: randomUUID(),
  heartbeatIntervalMs: 600_000,
  settings: {
    maintenanceMode: false,
    slots: 1,
    reuseSessions: false,
    extendedQueuePrioritization: false,
  },
})

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: MAX_MESSAGE_BYTES,
})
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    let message
    try {
      message = JSON.parse(data.toString())
    } catch {
      return socket.close(4000, 'malformed JSON')
    }
    if (message?.type === 'hello') socket.send(welcome)
    return undefined
  })
  socket.on('error', () => undefined)
})

const server = createServer((_request, response) => response.writeHead(404).end())
server.on('upgrade', (request, socket, head) => {
  if ((request.url ?? '').split('?')[0] !== CHANNEL_PATH) return socket.destroy()
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
  return undefined
})
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: server.address().port })
})

process.once('SIGTERM', () => process.exit(0))
