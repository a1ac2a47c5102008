/**
 * Socket.IO 4 with rooms, WebSocket transport only (the load generator speaks Engine.IO v4 over plain `ws`):
 * a `subscribe` event joins the PoV's room, a broadcast is `io.to(povId).emit('activity', …)`.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { cursorMaker } from '../activity.js'
import type { BenchServer } from './bench-server.js'

export async function startSocketIoServer (): Promise<BenchServer> {
  const httpServer = createServer()
  const io = new Server(httpServer, { transports: ['websocket'], serveClient: false })
  const cursor = cursorMaker()
  let seq = 0

  io.on('connection', (socket) => {
    socket.on('subscribe', (povId: string) => {
      socket.join(povId)
      socket.emit('subscribed', povId)
    })
  })
  httpServer.listen(0, '127.0.0.1')
  await once(httpServer, 'listening')

  return {
    port: (httpServer.address() as { port: number }).port,
    publish (activity) {
      io.to(activity.povId).emit('activity', { cursor: cursor(++seq), data: activity })
    },
    close: () => new Promise((resolve) => { io.close(() => resolve()) })
  }
}
