/**
 * @fastify/websocket used the naive way, as a quick app would: every broadcast loops over every connected client,
 * skips those not subscribed to the PoV, and serializes the message again for each recipient.
 */
import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import { WebSocket } from 'ws'
import { cursorMaker, type ActivityMessage } from '../activity.js'
import type { BenchServer } from './bench-server.js'

export async function startFastifyNaiveServer (): Promise<BenchServer> {
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket)
  const subscriptions = new WeakMap<WebSocket, Set<string>>()
  const cursor = cursorMaker()
  let seq = 0

  app.get('/ws', { websocket: true }, (socket) => {
    const watched = new Set<string>()
    subscriptions.set(socket, watched)
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string, povId: string }
      if (message.type !== 'subscribe') return
      watched.add(message.povId)
      socket.send(JSON.stringify({ type: 'subscribed', povId: message.povId }))
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })

  return {
    port: (app.server.address() as { port: number }).port,
    publish (activity) {
      const current = cursor(++seq)
      for (const client of app.websocketServer.clients) {
        if (client.readyState !== WebSocket.OPEN || !subscriptions.get(client)?.has(activity.povId)) continue
        const message: ActivityMessage = { type: 'activity', cursor: current, data: activity }
        client.send(JSON.stringify(message))
      }
    },
    close: () => app.close()
  }
}
