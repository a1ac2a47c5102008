import t from 'tap'
import { RawWebSocket } from './helpers/raw-socket.js'
import { startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

const SOCKETS = 200

t.test('app.close() sends 1001 to every socket and finishes in bounded time, even if a peer ignores the close', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const server = await startServer(t, { maxSocketsPerUser: SOCKETS + 1 }) // every socket is one user's
  const token = await server.wsToken()
  const clients = await Promise.all(Array.from({ length: SOCKETS }, () => server.connect({ token })))
  await Promise.all(clients.map((client, i) => client.subscribe(`p${i % 20}`)))
  // A peer that reads the close frame but never answers it, leaving the close handshake open.
  const deaf = await RawWebSocket.open(server.port, '/ws', token)
  t.teardown(() => deaf.destroy())
  deaf.send({ type: 'subscribe', povId: 'p0' })
  await waitFor(() => deaf.messages().some((m) => m.type === 'subscribed'), 5000, 'the deaf peer to be subscribed')
  t.match(server.app.povRealtime.stats(), { connections: SOCKETS + 1, subscriptions: SOCKETS + 1, povs: 20 })

  const started = Date.now()
  await server.app.close()
  const took = Date.now() - started
  t.ok(took < 10_000, `close finished in bounded time (${took} ms)`)

  const codes = await Promise.all(clients.map(async (client) => (await closed(client)).code))
  t.equal(codes.filter((code) => code === 1001).length, SOCKETS, 'every client got 1001')
  await waitFor(() => deaf.socket.closed, 5000, 'the deaf peer to be cut')
  t.same(deaf.closeCodes(), [1001], 'the deaf peer was sent 1001 too, then cut')
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
  t.equal(server.app.povRealtime.stats().closed['1001'], SOCKETS + 1, 'every 1001 is counted')
  t.same(unhandled, [], 'no unhandled rejection')
})

t.test('app.close() with no socket open is quick and leaves the stats at 0', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  client.close()
  await closed(client)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  const started = Date.now()
  await server.app.close()
  t.ok(Date.now() - started < 5000, 'nothing to wait for')
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
})

t.test('app.close() finishes in bounded time while an authorizeSubscription never answers', async (t) => {
  let asked: () => void = () => {}
  const askedOnce = new Promise<void>((resolve) => { asked = resolve })
  const server = await startServer(t, {
    authorizeSubscription: () => new Promise<boolean>(() => { asked() }) // hangs forever
  })
  const client = await server.connect()
  client.send({ type: 'subscribe', povId: 'p1' })
  await askedOnce
  const started = Date.now()
  await server.app.close()
  t.ok(Date.now() - started < 10_000, 'bounded')
  t.equal((await closed(client)).code, 1001)
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
})
