/**
 * Faults of Redis as a subscriber lives through them: Redis restarted empty, its pub/sub connections killed, the
 * subscriber cut again and again by `client-output-buffer-limit pubsub`, Redis paused. In each: no client socket is
 * closed; every activity the history holds reaches the subscriber once, in order (compared with the stream itself);
 * `resync` comes exactly where the history cannot fill the gap; and the operator sees a `warn` line and a counter.
 * Each test runs its own `redis-server` on a free port (stopped by pid) so that it can break it.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { createRedisBroker } from '../../lib/redis/index.js'
import type { PovRealtimeOptions } from '../../index.js'
import type { TestClient } from '../helpers/client.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { activity, sleep, startServer, waitFor, type Teardown, type TestServer } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const KEY_PREFIX = 'broker-faults:'

/** Reconnect every 100 ms (as an app might configure its client) so that the tests do not wait on backoff. */
const quickRetry = { retryStrategy: () => 100 }

async function instance (t: Teardown, port: number, options: Partial<PovRealtimeOptions> = {}, timeout?: number): Promise<TestServer> {
  const broker = createRedisBroker({ redis: { host: '127.0.0.1', port, ...quickRetry }, keyPrefix: KEY_PREFIX, timeout })
  return await startServer(t, { broker, ...options })
}

async function admin (t: Teardown, port: number): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, ...quickRetry })
  t.teardown(() => client.disconnect())
  return client
}

/** The ids of the activities PoV `povId`'s history holds now, oldest first (read from the stream itself). */
async function historyIds (redis: Redis, povId: string): Promise<string[]> {
  const entries = await redis.xrange(`${KEY_PREFIX}{${povId}}:h`, '-', '+')
  return entries.map(([, fields]) => (JSON.parse(fields[1]!) as { id: string }).id)
}

/** How many pub/sub connections Redis has now. */
async function pubsubClients (redis: Redis): Promise<number> {
  const list = await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub') as string
  return list.split('\n').filter((line) => line.trim() !== '').length
}

const ids = (client: TestClient, povId = 'p1') => client.activities(povId).map((data) => data.id)
const resyncs = (client: TestClient) => client.messages.filter((m) => m.type === 'resync')

/** The `warn` lines of `server` whose message matches `pattern`. */
function warnings (server: TestServer, pattern: RegExp): Array<Record<string, unknown>> {
  return server.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.level === 40 && pattern.test(String(line.msg)))
}

/** Publishes on `server` until Redis takes it (Redis is coming back). */
async function publishWhenBack (server: TestServer, povId: string, id: string, blob?: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await server.app.broadcastActivity(activity(povId, { id, ...(blob && { metadata: { blob } }) }))
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(100)
    }
  }
}

t.test('Redis restarted empty: no socket closed; what the new history holds arrives once, in order, then one resync; a PoV with nothing lost is told nothing', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port)
  const b = await instance(t, redis.port)
  const client = await a.connect()
  await client.subscribe('p1')
  await client.subscribe('quiet')
  for (const id of ['e0', 'e1']) await b.app.broadcastActivity(activity('p1', { id }))
  await waitFor(() => ids(client).length === 2, 5000, 'e0, e1')

  await redis.restart()
  // Published on the new, empty Redis as soon as it takes it: a may read them as its gap, or get them live.
  for (const id of ['n0', 'n1', 'n2']) await publishWhenBack(b, 'p1', id)
  await waitFor(() => ids(client).length === 5 && resyncs(client).length === 1, 15_000, 'the new activities and the resync')
  await b.app.broadcastActivity(activity('p1', { id: 'n3' }))
  await waitFor(() => ids(client).length === 6, 5000, 'n3')
  await sleep(200)

  t.same(ids(client), ['e0', 'e1', 'n0', 'n1', 'n2', 'n3'], 'every activity once, in order')
  t.same(await historyIds(await admin(t, redis.port), 'p1'), ['n0', 'n1', 'n2', 'n3'], 'which is what the new history holds, after what came before')
  const feed = client.messages.filter((m) => (m.type === 'activity' || m.type === 'resync') && (m.povId ?? (m.data as { povId: string }).povId) === 'p1')
  const at = feed.findIndex((m) => m.type === 'resync')
  t.same(resyncs(client).map((m) => m.povId), ['p1'], 'exactly one resync, for the PoV that lost its history; none for the quiet PoV')
  t.ok(at >= 2, 'after what the old history delivered')
  t.equal(feed[at]!.cursor, at === 2 ? null : feed[at - 1]!.cursor, 'naming where live delivery goes on: the activity before it, or null when there was none')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
  t.match(a.app.povRealtime.stats(), { feedInterruptions: 1, resyncs: 1, closed: {} })
  t.ok(a.app.povRealtime.stats().brokerFaults >= 1, 'the restart counts as a broker fault')
  t.ok(warnings(a, /Redis subscriber connection lost/).length >= 1, 'and is logged')
  t.match(warnings(a, /lost in transit/), [{ povId: 'p1', subscribers: 1 }], 'the lost gap is logged with its PoV')
})

t.test('pub/sub connections killed (CLIENT KILL TYPE pubsub): the gap is filled from the history, no resync, no socket closed', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port)
  const b = await instance(t, redis.port)
  const control = await admin(t, redis.port)
  const client = await a.connect()
  await client.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'e0' }))
  await waitFor(() => ids(client).length === 1, 5000, 'e0')

  for (let round = 0; round < 3; round++) {
    const deadline = Date.now() + 10_000
    while (await pubsubClients(control) !== 2 && Date.now() < deadline) await sleep(50)
    const killed = await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub') as number
    t.equal(killed, 2, `round ${round}: both instances' subscriber connections were killed`)
    // Published while a's subscriber is away: only the history has them.
    for (let i = 0; i < 5; i++) await b.app.broadcastActivity(activity('p1', { id: `r${round}-${i}` }))
    await waitFor(() => ids(client).length === 1 + 5 * (round + 1), 10_000, `round ${round}'s activities`)
  }
  await b.app.broadcastActivity(activity('p1', { id: 'last' }))
  await waitFor(() => ids(client).includes('last'), 5000, 'live delivery after the kills')
  await sleep(200)

  t.same(ids(client), await historyIds(control, 'p1'), 'every activity of the history, once, in order')
  t.same(resyncs(client), [], 'no resync: the history filled every gap')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
  t.match(a.app.povRealtime.stats(), { feedInterruptions: 0, resyncs: 0, closed: {} })
  t.ok(a.app.povRealtime.stats().brokerFaults >= 1, `the kills count as broker faults (${a.app.povRealtime.stats().brokerFaults})`)
  t.ok(warnings(a, /Redis subscriber connection lost/).length >= 1, 'and are logged')
})

t.test('client-output-buffer-limit pubsub cuts the subscriber again and again: every activity still arrives once, in order, with no resync', async (t) => {
  const redis = await startRedisServer(t)
  const control = await admin(t, redis.port)
  // A pub/sub client whose output buffer (beyond Redis's 16 KiB reply buffer) passes 8 KiB is cut at once: every
  // activity larger than that cuts every subscriber of its PoV, which must then read it from the history.
  await control.config('SET', 'client-output-buffer-limit', 'pubsub 8192 0 0')
  const a = await instance(t, redis.port, { history: { size: 1000 } })
  const b = await instance(t, redis.port, { history: { size: 1000 } })
  const client = await a.connect()
  await client.subscribe('p1')

  const large = 'x'.repeat(24 * 1024)
  const published: string[] = []
  for (let i = 0; i < 30; i++) {
    const id = `e${i}`
    await publishWhenBack(b, 'p1', id, i % 5 === 4 ? large : undefined)
    published.push(id)
    // Each one reaches the subscriber before the next is published: a large one only after a cut and a history read.
    await waitFor(() => ids(client).length === published.length, 10_000, id)
  }
  await b.app.broadcastActivity(activity('p1', { id: 'last' }))
  await waitFor(() => ids(client).includes('last'), 10_000, 'the last one')
  await sleep(200)

  const faults = a.app.povRealtime.stats().brokerFaults
  t.ok(faults >= 6, `Redis cut the subscriber at each large activity, each one a broker fault (${faults})`)
  t.ok(warnings(a, /Redis subscriber connection lost/).length >= 6, 'each logged')
  t.same(ids(client), [...published, 'last'], 'every activity once, in order')
  t.same(ids(client), await historyIds(control, 'p1'), 'which is what the history holds')
  t.same(resyncs(client), [], 'no resync: the history filled every gap')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
})

t.test('Redis paused (SIGSTOP, then SIGCONT): publishing fails within the timeout, no socket closed, then everything Redis took arrives once, in order', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port, {}, 500)
  const b = await instance(t, redis.port, {}, 500)
  const client = await a.connect()
  await client.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'before' }))
  await waitFor(() => ids(client).length === 1, 5000, 'before')

  redis.pause()
  t.teardown(() => redis.resume())
  const outcome = await a.app.broadcastActivity(activity('p1', { id: 'paused' })).then(() => 'published', (err: { code?: string, outcomeUnknown?: boolean }) => err)
  t.match(outcome, { code: 'POV_REALTIME_BROKER_UNAVAILABLE', outcomeUnknown: true }, 'rejected after the timeout: it may still run')
  t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, 'the socket answers meanwhile')
  await sleep(1000)
  redis.resume()

  await publishWhenBack(b, 'p1', 'after')
  await waitFor(() => ids(client).includes('after'), 10_000, 'after')
  await sleep(300)
  // The paused publish was written before Redis froze, so Redis ran it when it thawed: it is in the history, and the
  // subscriber gets it once, in its place.
  const history = await historyIds(await admin(t, redis.port), 'p1')
  t.same(ids(client), history, `every activity the history holds, once, in order (${history.join(', ')})`)
  t.same(resyncs(client), [], 'no resync: nothing was lost')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
  t.ok(a.app.povRealtime.stats().brokerFaults >= 1, 'the unanswered calls count as a broker fault')
  t.ok(warnings(a, /Redis did not answer in time/).length === 1, 'logged once for the outage')
})

t.test('an instance cut off for longer than the window: what the window still holds arrives once, in order, then resync naming the newest', async (t) => {
  const redis = await startRedisServer(t)
  const proxy = await startTcpProxy(t, redis.port)
  const a = await instance(t, proxy.port, { history: { size: 3 } })
  const b = await instance(t, redis.port, { history: { size: 3 } })
  const client = await a.connect()
  await client.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'e0' }))
  await waitFor(() => ids(client).length === 1, 5000, 'e0')

  proxy.cut()
  for (let i = 1; i <= 6; i++) await b.app.broadcastActivity(activity('p1', { id: `e${i}` })) // the window keeps e4..e6
  proxy.restore()
  await waitFor(() => resyncs(client).length === 1, 15_000, 'the resync')
  await b.app.broadcastActivity(activity('p1', { id: 'e7' }))
  await waitFor(() => ids(client).includes('e7'), 5000, 'e7')
  await sleep(200)

  t.same(ids(client), ['e0', 'e4', 'e5', 'e6', 'e7'], 'what the window held, once, in order, then live delivery')
  const feed = client.messages.filter((m) => m.type === 'activity' || m.type === 'resync')
  t.same(feed.map((m) => m.type === 'resync' ? 'resync' : (m.data as { id: string }).id), ['e0', 'e4', 'e5', 'e6', 'resync', 'e7'],
    'the resync comes after what the window still held')
  t.same(resyncs(client), [{ type: 'resync', povId: 'p1', cursor: feed[3]!.cursor }], 'naming e6: live delivery goes on after it')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
  t.match(a.app.povRealtime.stats(), { feedInterruptions: 1, resyncs: 1, closed: {} })
  t.ok(a.app.povRealtime.stats().brokerFaults >= 1, 'the cut counts as a broker fault')

  // A client that resumes from the resync's cursor elsewhere gets what followed it, recovered.
  const resumed = await b.connect()
  t.match(await resumed.subscribe('p1', feed[3]!.cursor as string), { type: 'subscribed', recovered: true })
  t.same(ids(resumed), ['e7'], 'the resync cursor is a valid place to resume from')
})
