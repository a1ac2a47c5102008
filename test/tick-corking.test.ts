/**
 * Several activities for one socket in one turn of the event loop leave in one write after the first (the socket is
 * corked until the turn ends), and the slow-consumer check looks at what is queued only once the corked frames were
 * handed over. Observed through the server socket's public Writable state (`writableCorked`, `writableLength`).
 */
import type { Socket } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { activity, startServer, waitFor, type Teardown } from './helpers/server.js'

/** Starts a server that remembers the TCP socket of each upgrade request (public API: `request.raw.socket`). */
async function startRecordingServer (t: Teardown, options = {}) {
  const sockets: Socket[] = []
  const server = await startServer(t, options, (app) => {
    app.addHook('onRequest', async (request) => {
      if (request.headers.upgrade) sockets.push(request.raw.socket)
    })
  })
  return { server, sockets }
}

t.test('activities of one turn: the first is written at once, the rest wait in a cork until the turn ends', async (t) => {
  const { server, sockets } = await startRecordingServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const [socket] = sockets
  t.ok(socket, 'the upgrade socket was recorded')

  const alone = server.app.broadcastActivity(activity('p1', { id: 'alone' }))
  t.equal(socket!.writableCorked, 0, 'one activity in a turn: not corked')
  t.match(await alone, { delivered: 1 })
  await nextTurn()

  const ids = Array.from({ length: 10 }, (_, i) => `burst-${i}`)
  const burst = ids.map((id) => server.app.broadcastActivity(activity('p1', { id })))
  t.equal(socket!.writableCorked, 1, 'a second activity in the same turn corks the socket')
  t.ok(socket!.writableLength > 0, `the nine frames after the first wait in the cork (${socket!.writableLength} bytes)`)
  await nextTurn()
  t.equal(socket!.writableCorked, 0, 'uncorked once the turn ended')
  t.equal(socket!.writableLength, 0, 'and everything handed to the kernel')
  t.same((await Promise.all(burst)).map((result) => result.delivered), ids.map(() => 1))

  await waitFor(() => client.activities().length === 11, 5000, 'every activity')
  t.same(client.activities().map((a) => a.id), ['alone', ...ids], 'every activity once, in publish order')
})

t.test('a burst larger than maxBufferedBytes in one turn does not cut a subscriber that reads', async (t) => {
  const maxBufferedBytes = 64 * 1024
  const { server } = await startRecordingServer(t, { maxBufferedBytes })
  const client = await server.connect()
  await client.subscribe('p1')
  const count = 100 // about 800 KiB in one turn: far over the limit while corked, well within loopback's kernel buffers
  const published = Array.from({ length: count }, (_, i) =>
    server.app.broadcastActivity(activity('p1', { id: `a${i}`, message: 'x'.repeat(8 * 1024) })))
  await Promise.all(published)
  await waitFor(() => client.activities().length === count, 10_000, 'every activity')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0, 'not closed as a slow consumer')
  t.equal(client.ws.readyState, client.ws.OPEN)
})
