import t from 'tap'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, startServer, waitFor } from './helpers/server.js'

const MAX_BUFFERED_BYTES = 256 * 1024
/** About 8 KiB per activity frame. */
const MESSAGE = 'x'.repeat(8 * 1024)
/** Activities per batch; the fast subscriber reads each batch before the next one is published. */
const BATCH = 50
/** Far more than the loopback kernel buffers can hold for a peer that does not read. */
const MAX_ACTIVITIES = 8000

t.test('a subscriber that stops reading is cut past maxBufferedBytes while a fast one receives everything', async (t) => {
  const server = await startServer(t, { maxBufferedBytes: MAX_BUFFERED_BYTES })
  const fast = await server.connect({ claims: { userId: 'u2' } })
  await fast.subscribe('p1')
  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'p1' })
  await waitFor(() => slow.messages().some((m) => m.type === 'subscribed'), 5000, 'the slow peer to be subscribed')
  slow.stopReading()
  t.match(server.app.povRealtime.stats(), { connections: 2, subscriptions: 2 })

  const published: string[] = []
  async function publishBatch (): Promise<number[]> {
    const delivered: number[] = []
    for (let i = 0; i < BATCH; i++) {
      const input = activity('p1', { id: `a${published.length}`, message: MESSAGE })
      published.push(input.id)
      delivered.push((await server.app.broadcastActivity(input)).delivered)
    }
    await waitFor(() => fast.activities().length === published.length, 20_000, 'the fast subscriber to read the batch')
    return delivered
  }

  while (server.app.povRealtime.stats().slowConsumerCloses === 0 && published.length < MAX_ACTIVITIES) await publishBatch()
  const stats = server.app.povRealtime.stats()
  t.equal(stats.slowConsumerCloses, 1, `the slow peer was cut after ${published.length} activities of about 8 KiB`)
  t.equal(stats.closed['4008'], 1, 'with 4008')
  await waitFor(() => server.app.povRealtime.stats().connections === 1, 5000, 'the slow socket to be forgotten')
  t.match(server.app.povRealtime.stats(), { connections: 1, subscriptions: 1, povs: 1 })

  const afterCut = await publishBatch()
  t.ok(afterCut.every((n) => n === 1), 'later activities go to the fast subscriber only')
  t.same(fast.activities().map((data) => data.id), published, 'the fast subscriber got every activity, in order')
  t.equal(fast.ws.readyState, fast.ws.OPEN)
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 1)

  // Reading again, the slow peer finds its connection ended by the server.
  slow.drain()
  await waitFor(() => slow.socket.closed, 20_000, 'the TCP connection to end')
  t.pass('the TCP connection was cut')
})

t.test('a subscriber that reads is never cut, however many activities it is sent', async (t) => {
  const server = await startServer(t, { maxBufferedBytes: MAX_BUFFERED_BYTES })
  const client = await server.connect()
  await client.subscribe('p1')
  const count = 2000
  for (let i = 0; i < count; i++) {
    await server.app.broadcastActivity(activity('p1', { id: `a${i}`, message: 'x'.repeat(1024) }))
    // Publishing in bursts of 100 leaves the event loop room to write them out, as an app's request handlers would.
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve))
  }
  await waitFor(() => client.activities().length === count, 20_000, 'every activity to arrive')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
  t.equal(client.ws.readyState, client.ws.OPEN)
})
