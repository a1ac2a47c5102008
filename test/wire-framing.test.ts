/**
 * Activities are framed once per broadcast and the same bytes written to every subscriber's socket (falling back to
 * ws's own framing when an extension such as permessage-deflate is negotiated). These tests pin what a client sees.
 */
import fastifyWebsocket from '@fastify/websocket'
import t from 'tap'
import { TestClient } from './helpers/client.js'
import { activity, startServer } from './helpers/server.js'
import { opened } from './helpers/socket-waits.js'

// Message sizes on each side of the frame-length encodings: 7-bit, 16-bit and 64-bit lengths.
const sizes = { small: 10, medium: 2_000, large: 65_355 } // large: an activity near the 64 KiB limit, its frame just over 65,535 bytes

t.test('activities of every frame-length class arrive intact, in order, interleaved with other answers', async (t) => {
  const server = await startServer(t)
  const first = await server.connect()
  const second = await server.connect()
  for (const client of [first, second]) await client.subscribe('p1')
  const sent: string[] = []
  for (const [name, length] of Object.entries(sizes)) {
    await first.request({ type: 'ping' }, 'pong') // framed by ws, between activities framed by the plugin
    const { delivered } = await server.app.broadcastActivity(activity('p1', { id: name, metadata: { blob: 'x'.repeat(length) } }))
    t.equal(delivered, 2)
    sent.push(name)
  }
  for (const client of [first, second]) {
    await client.next((m) => m.type === 'activity' && (m.data as { id: string }).id === 'large', 5000)
    t.same(client.activities().map((a) => a.id), sent, 'every activity, in publish order')
    t.same(client.activities().map((a) => (a.metadata as { blob: string }).blob), Object.values(sizes).map((n) => 'x'.repeat(n)), 'bodies intact')
  }
  const order = first.messages.filter((m) => m.type === 'pong' || m.type === 'activity').map((m) => m.type)
  t.same(order, ['pong', 'activity', 'pong', 'activity', 'pong', 'activity'], 'ws-framed and plugin-framed messages in the order they were sent')
})

t.test('with permessage-deflate negotiated, activities still arrive intact (ws frames and compresses them)', async (t) => {
  const server = await startServer(t, {}, async (app) => {
    await app.register(fastifyWebsocket, { options: { perMessageDeflate: true } })
  })
  const token = await server.wsToken()
  const client = new TestClient(server.wsUrl, ['pov-realtime.v1', `bearer.${token}`], undefined, { perMessageDeflate: true })
  t.teardown(() => client.terminate())
  await opened(client)
  t.match(client.ws.extensions, /permessage-deflate/, 'the extension is in use')
  await client.subscribe('p1')
  for (const [name, length] of Object.entries(sizes)) {
    await server.app.broadcastActivity(activity('p1', { id: name, metadata: { blob: 'y'.repeat(length) } }))
  }
  await client.next((m) => m.type === 'activity' && (m.data as { id: string }).id === 'large', 5000)
  t.same(client.activities().map((a) => a.id), Object.keys(sizes))
  t.same(client.activities().map((a) => (a.metadata as { blob: string }).blob), Object.values(sizes).map((n) => 'y'.repeat(n)))
})
