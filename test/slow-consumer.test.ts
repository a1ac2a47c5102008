import type { Socket } from 'node:net'
import t from 'tap'
import { READ_EVENT_COALESCE_MS } from '../lib/constants.js'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, sleep, startServer, waitFor, type TestServer } from './helpers/server.js'

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

/** Gives `povId` `count` read marks (users `reader-0000`…), so that a `reads` answer lists them all (about 90 bytes each). */
async function markMany (server: TestServer, povId: string, count: number): Promise<void> {
  const { cursor } = await server.app.broadcastActivity(activity(povId))
  for (let i = 0; i < count; i++) await server.app.povRealtime.markRead(`reader-${String(i).padStart(4, '0')}`, povId, cursor)
  // Past the coalescing window: a client subscribed within it would also get these marks as unsolicited `reads`.
  await sleep(READ_EVENT_COALESCE_MS * 2)
}

t.test('a peer that stops reading while it goes on asking is cut past maxBufferedBytes: answers count too', async (t) => {
  // No rate limit, so that the answers outgrow the kernel's buffers (some 4 MiB on loopback) at once.
  const server = await startServer(t, { maxBufferedBytes: MAX_BUFFERED_BYTES, readReceipts: true, rateLimit: false })
  await markMany(server, 'p1', 1000)
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  peer.send({ type: 'subscribe', povId: 'p1' })
  await peer.waitForMessage('subscribed')
  peer.stopReading()
  // Each answer lists 1,000 marks (about 90 KiB): 200 of them are some 18 MiB.
  for (let i = 0; i < 200; i++) peer.send({ type: 'reads', povId: 'p1' })
  await waitFor(() => server.app.povRealtime.stats().slowConsumerCloses === 1, 10_000, 'the peer to be cut as a slow consumer')
  t.equal(server.app.povRealtime.stats().closed['4008'], 1, 'with 4008')
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  t.match(server.app.povRealtime.stats(), { subscriptions: 0, povs: 0 })
  t.ok(server.logs.some((line) => line.includes('client reads too slowly')), 'the cut is logged')
})

t.test('a client that reads is never cut for its answers, though each burst of them is several times the bound', async (t) => {
  const server = await startServer(t, { maxBufferedBytes: MAX_BUFFERED_BYTES, readReceipts: true, rateLimit: false })
  await markMany(server, 'p1', 1000)
  const client = await server.connect()
  await client.subscribe('p1')
  const answers = () => client.messages.filter((m) => m.type === 'reads')
  // Bursts of 20 answers of about 90 KiB: some 1.8 MiB each, which the kernel takes as the client reads.
  for (let burst = 1; burst <= 10; burst++) {
    for (let i = 0; i < 20; i++) client.send({ type: 'reads', povId: 'p1' })
    await waitFor(() => answers().length === burst * 20, 10_000, `the answers of burst ${burst}`)
  }
  t.ok(answers().every((m) => (m.reads as unknown[]).length === 1000), 'each lists every mark')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
  t.equal(client.ws.readyState, client.ws.OPEN)
})

/** A history whose byte bound the app raised, so that a full window of the largest activities (some 6 MiB) is kept. */
const LARGE_HISTORY = { size: 100, ttl: 600_000, maxBytes: 8 * 1024 * 1024 }

/** The largest activities the plugin accepts are 64 KiB serialized: these are about 60 KiB. */
function largeActivity (i: number) {
  return activity('p1', { id: `big${i}`, message: 'm'.repeat(10_000), metadata: { filler: 'f'.repeat(50_000) } })
}

/** p1's window filled after one small activity: the cursor to resume from, and the ids of the 99 large ones after it. */
async function fillWindowAfterSeen (server: TestServer): Promise<{ since: string, ids: string[] }> {
  const first = await server.app.broadcastActivity(activity('p1', { id: 'seen' }))
  const ids: string[] = []
  for (let i = 0; i < 99; i++) {
    await server.app.broadcastActivity(largeActivity(i))
    ids.push(`big${i}`)
  }
  return { since: first.cursor, ids }
}

t.test('a resume of a full history window of the largest activities reaches a reading client under the default bound', async (t) => {
  // Default maxBufferedBytes (1 MiB); a history of 100 activities whose byte bound the app raised to 8 MiB: the replay is
  // some 6 MiB, more than the bound and the kernel's buffers together. It is paced by the client's reading, not cut.
  const server = await startServer(t, { history: LARGE_HISTORY })
  const { since, ids } = await fillWindowAfterSeen(server)
  const client = await server.connect()
  const subscribed = await client.request({ type: 'subscribe', povId: 'p1', since }, 'subscribed', 20_000)
  t.same(subscribed, { type: 'subscribed', povId: 'p1', recovered: true })
  t.same(client.activities().map((data) => data.id), ids, 'every missed activity, once, oldest first')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0, 'and the client was not cut')
  t.equal(client.ws.readyState, client.ws.OPEN)
})

t.test('a resume begun while the client was not reading reaches it once it reads, live activities after it in order', async (t) => {
  const server = await startServer(t, { history: LARGE_HISTORY })
  const { since, ids } = await fillWindowAfterSeen(server)
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  peer.stopReading()
  peer.send({ type: 'subscribe', povId: 'p1', since })
  await sleep(300) // the replay fills the kernel's buffers and half the bound, then waits for the client
  const live: string[] = []
  for (let i = 0; i < 5; i++) {
    await server.app.broadcastActivity(activity('p1', { id: `live${i}` }))
    live.push(`live${i}`)
  }
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0, 'the waiting resume did not make it a slow consumer')
  peer.socket.resume()
  await waitFor(() => peer.messages().filter((m) => m.type === 'activity').length === ids.length + live.length, 20_000, 'the replay and the live activities')
  const messages = peer.messages()
  const subscribedAt = messages.findIndex((m) => m.type === 'subscribed')
  t.same(messages[subscribedAt], { type: 'subscribed', povId: 'p1', recovered: true })
  const idsOf = (list: typeof messages) => list.filter((m) => m.type === 'activity').map((m) => (m.data as { id: string }).id)
  t.same(idsOf(messages.slice(0, subscribedAt)), ids, 'the replay, before subscribed')
  t.same(idsOf(messages.slice(subscribedAt)), live, 'the live activities, after it, once each, in order')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
})

t.test('requests that pile up behind a catch-up the client does not read are bounded: cut with 4008', async (t) => {
  const server = await startServer(t, { rateLimit: false, history: LARGE_HISTORY })
  const { since } = await fillWindowAfterSeen(server)
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  peer.stopReading()
  peer.send({ type: 'subscribe', povId: 'p1', since })
  await sleep(300) // the replay now waits for the client to read
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
  // Each waits behind the subscribe: 200 of about 8 KiB are more than the default bound (1 MiB).
  for (let i = 0; i < 200; i++) peer.send({ type: 'auth', token: 't'.repeat(8000) })
  await waitFor(() => server.app.povRealtime.stats().slowConsumerCloses === 1, 5000, 'the peer to be cut')
  t.equal(server.app.povRealtime.stats().closed['4008'], 1, 'with 4008')
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
})

t.test('a resume paced under a bound smaller than the connection\'s high-water mark still reaches a client that reads again', async (t) => {
  // With less than 16 KiB queued the connection never emits `drain`: the waiting replay must look again by itself.
  const maxBufferedBytes = 12 * 1024
  const serverSockets: Socket[] = []
  const server = await startServer(t, { maxBufferedBytes }, (app) => {
    app.server.on('connection', (socket: Socket) => { serverSockets.push(socket) })
  })
  const first = await server.app.broadcastActivity(activity('p1', { id: 'seen' }))
  const ids: string[] = []
  for (let i = 0; i < 99; i++) {
    await server.app.broadcastActivity(activity('p1', { id: `r${i}`, message: 'm'.repeat(1000) }))
    ids.push(`r${i}`)
  }
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  peer.send({ type: 'subscribe', povId: 'p0' })
  await peer.waitForMessage('subscribed')
  peer.stopReading()
  const onServer = serverSockets.find((socket) => socket.remotePort === peer.socket.localPort)!
  // Fill the kernel's buffers with p0's activities until the server starts to queue, well within the bound: one per
  // turn, so that none is corked and the queue never reaches the high-water mark.
  for (let i = 0; onServer.writableLength === 0; i++) {
    if (i === 20_000) throw new Error('the kernel\'s buffers never filled up')
    await server.app.broadcastActivity(activity('p0', { id: `fill${i}`, message: 'f'.repeat(1000) }))
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.notOk(onServer.writableNeedDrain, 'the connection will not emit drain')
  t.ok(onServer.writableLength < maxBufferedBytes, `the server queues ${onServer.writableLength} bytes, within the bound`)
  peer.send({ type: 'subscribe', povId: 'p1', since: first.cursor })
  await sleep(200) // the replay writes up to half the bound, then waits below the high-water mark
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0, 'the waiting replay did not make it a slow consumer')
  peer.socket.resume()
  await waitFor(() => peer.messages().some((m) => m.type === 'subscribed' && m.povId === 'p1'), 20_000, 'the replay to reach the peer')
  const replayed = peer.messages().filter((m) => m.type === 'activity' && (m.data as { povId: string }).povId === 'p1')
  t.same(replayed.map((m) => (m.data as { id: string }).id), ids, 'every missed activity, once, oldest first')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
})
