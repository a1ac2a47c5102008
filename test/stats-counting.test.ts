/**
 * `stats()` counts what happened, once: each socket's close once, whatever follows it, and as deliveries only the
 * activity frames a socket could still take.
 */
import t from 'tap'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, startServer, waitFor } from './helpers/server.js'

const MESSAGE = 'x'.repeat(8 * 1024)

t.test('a socket closed (4003, revoked) is counted once; nothing written after it is a delivery', async (t) => {
  const server = await startServer(t, { maxBufferedBytes: 64 * 1024 })
  const reader = await server.connect({ claims: { userId: 'u2' } })
  await reader.subscribe('p2')
  // A peer that never answers the server's close frame: its socket stays closing while p2's activities go on.
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'closing' }))
  t.teardown(() => peer.destroy())
  peer.send({ type: 'subscribe', povId: 'p1' })
  peer.send({ type: 'subscribe', povId: 'p2' })
  await waitFor(() => peer.messages().filter((m) => m.type === 'subscribed').length === 2, 5000, 'the peer to be subscribed')

  await server.app.povRealtime.revoke({ userId: 'closing' })
  await waitFor(() => peer.closeCodes().length > 0, 5000, 'the close frame')
  t.same(peer.closeCodes(), [4003], 'the peer is closed with 4003')
  const before = server.app.povRealtime.stats()
  t.match(before, { closed: { 4003: 1 } })

  const delivered: number[] = []
  for (let i = 0; i < 100; i++) delivered.push((await server.app.broadcastActivity(activity('p2', { message: MESSAGE }))).delivered)
  await waitFor(() => reader.activities('p2').length === 100, 10_000, 'the reader to get every activity')
  t.same(delivered, Array(100).fill(1), 'each activity reached the reader only: the closing socket takes none')
  const after = server.app.povRealtime.stats()
  t.equal(after.deliveries - before.deliveries, 100, 'deliveries count what was written to open sockets')
  t.same(after.closed, { 4003: 1 }, 'the closing socket is not counted again (as a slow consumer)')
  t.equal(after.slowConsumerCloses, 0)
})

t.test('a frame that takes a socket past maxBufferedBytes is not a delivery: it is cut off with the socket', async (t) => {
  const server = await startServer(t, { maxBufferedBytes: 64 * 1024 })
  const reader = await server.connect({ claims: { userId: 'u2' } })
  await reader.subscribe('p1')
  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'p1' })
  await waitFor(() => slow.messages().some((m) => m.type === 'subscribed'), 5000, 'the slow peer to be subscribed')
  slow.stopReading()

  let total = 0
  let atCut: number | undefined
  for (let i = 0; i < 5000 && atCut === undefined; i++) {
    const { delivered } = await server.app.broadcastActivity(activity('p1', { message: MESSAGE }))
    total += delivered
    if (server.app.povRealtime.stats().slowConsumerCloses === 1) atCut = delivered
    if (i % 50 === 49) await waitFor(() => reader.activities().length === i + 1, 10_000, 'the reader to keep up')
  }
  t.equal(atCut, 1, 'the broadcast that cut the slow peer reached the reader only')
  t.equal(server.app.povRealtime.stats().deliveries, total, 'stats agree with what broadcastActivity reported')
  t.same(server.app.povRealtime.stats().closed, { 4008: 1 })
})

t.test('a bad frame after the server\'s own close is not counted as a second close', async (t) => {
  const server = await startServer(t)
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  for (let i = 0; i < 20; i++) peer.sendFrame(0x1, Buffer.from('not json'))
  await waitFor(() => peer.closeCodes().length > 0, 5000, 'the close frame')
  t.same(peer.closeCodes(), [1008])
  peer.sendFrame(0x3, Buffer.from('{}')) // a reserved opcode: ws refuses it with 1002 while the socket is closing
  await waitFor(() => peer.socket.closed, 5000, 'the connection to end')
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  t.same(server.app.povRealtime.stats().closed, { 1008: 1 }, 'one close, counted once')
})
