// A bare WebSocket server in a process of its own, for a bench's reference round trip: it
// listens on 127.0.0.1, sends its port to the parent, and answers pings (the ws library's own
// pong) until it is killed.
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
wss.on('listening', () => process.send?.(wss.address().port))
