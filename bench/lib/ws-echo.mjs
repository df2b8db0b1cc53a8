// A bare WebSocket echo server in a process of its own, for a bench's floor: it listens on
// 127.0.0.1 and sends its port to the parent, then echoes every message until it is killed.
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)))
wss.on('listening', () => process.send?.(wss.address().port))
