/**
 * The Redis broker when Redis fails: down, hung, flushed, replaced, or out of reach of one instance. Each test runs
 * its own `redis-server` so that it can break it (stand-alone only), or proxies in front of the shared Redis or the
 * file's cluster (on both, see `redis-proxied.ts`).
 */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import WebSocket from 'ws'
import { createRedisBroker } from '../../lib/redis/index.js'
import type { TestClient } from '../helpers/client.js'
import { throughTcpProxies } from '../helpers/redis-proxied.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, sleep, startServer, waitFor, type Teardown, type TestServer } from '../helpers/server.js'

/** Reconnect every 100 ms (as an app might configure its client) so that the tests do not wait on backoff. */
const quickRetry = { retryStrategy: () => 100 }

async function instance (t: Teardown, port: number, keyPrefix = 'faults:', timeout?: number): Promise<TestServer> {
  return await startServer(t, { broker: createRedisBroker({ redis: { host: '127.0.0.1', port, ...quickRetry }, keyPrefix, timeout }) })
}

const ids = (client: TestClient) => client.activities('p1').map((data) => data.id)

/** Publishes on `server` until Redis takes it (Redis is coming back). */
async function publishWhenBack (server: TestServer, id: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await server.app.broadcastActivity(activity('p1', { id }))
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(100)
    }
  }
}

/** Reads `read()` until `done` holds for it (or `timeout` ms pass) and returns the last value read. */
async function until<T> (read: () => Promise<T>, done: (value: T) => boolean, timeout = 5000): Promise<T> {
  const deadline = Date.now() + timeout
  let value = await read()
  while (!done(value) && Date.now() < deadline) {
    await sleep(20)
    value = await read()
  }
  return value
}

t.test('Redis down: broadcastActivity rejects at once with BROKER_UNAVAILABLE, sockets stay open and answer ping; Redis back empty: subscribers are told resync on the same socket', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port)
  const b = await instance(t, redis.port)
  const client = await a.connect()
  await client.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'before' }))
  await waitFor(() => ids(client).length === 1, 5000, 'the first activity')

  await redis.kill()
  const started = Date.now()
  const failures = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    a.app.broadcastActivity(activity('p1', { id: `down-${i}` })).then(() => undefined, (err: unknown) => err)))
  const elapsed = Date.now() - started
  t.ok(failures.every((err) => (err as { code?: string, statusCode?: number }).code === 'POV_REALTIME_BROKER_UNAVAILABLE' &&
    (err as { statusCode?: number }).statusCode === 503), 'every publish rejected with POV_REALTIME_BROKER_UNAVAILABLE (503)')
  t.ok(elapsed < 1000, `rejected without waiting for Redis (${elapsed} ms)`)
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket is still open')
  t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, 'ping still works')

  // The restarted Redis keeps nothing (no persistence): whatever reached the old one after this instance lost it is
  // gone, and the broker cannot prove there was nothing. The subscriber is told so in-band, and stays subscribed.
  await redis.restart()
  await waitFor(() => client.messages.some((m) => m.type === 'resync'), 15_000, 'the resync')
  t.same(client.messages.filter((m) => m.type === 'resync'), [{ type: 'resync', povId: 'p1', cursor: null }],
    'one resync: the new Redis has no activity of the PoV to name')
  await publishWhenBack(b, 'after')
  await waitFor(() => ids(client).includes('after'), 5000, 'live delivery after the resync, on the same socket')
  t.same(ids(client), ['before', 'after'], 'nothing published while Redis was down reached anyone')
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket was never closed')
  t.match(a.app.povRealtime.stats(), { feedInterruptions: 1, resyncs: 1, closed: {} })
  t.ok(a.app.povRealtime.stats().brokerFaults >= 1, 'the lost connections are counted as broker faults')
})

t.test('a hung Redis: broadcastActivity rejects with BROKER_UNAVAILABLE within the broker timeout', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port, 'faults:', 500)
  const client = await a.connect()
  await client.subscribe('p1')
  redis.pause()
  t.teardown(() => redis.resume())
  const started = Date.now()
  await t.rejects(a.app.broadcastActivity(activity('p1', { id: 'hung' })), { code: 'POV_REALTIME_BROKER_UNAVAILABLE' })
  const elapsed = Date.now() - started
  t.ok(elapsed >= 400 && elapsed < 3000, `gave up after about the timeout (${elapsed} ms)`)
  t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, 'the socket is unaffected')
  redis.resume()
  await a.app.broadcastActivity(activity('p1', { id: 'thawed' }))
  await waitFor(() => ids(client).includes('thawed'), 5000, 'delivery after Redis thawed')
})

testOnEachTarget('an instance cut off from Redis: what others published meanwhile reaches its sockets when it is back, in order, once', async (t, redis) => {
  const proxy = await throughTcpProxies(t, redis)
  const a = await startServer(t, { broker: createRedisBroker({ redis: proxy.redis, keyPrefix: redis.keyPrefix }) })
  const b = await startServer(t, { broker: redis.createBroker() })
  const client = await a.connect()
  await client.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'e0' }))
  await waitFor(() => ids(client).length === 1, 5000, 'e0')

  proxy.cut()
  await t.rejects(a.app.broadcastActivity(activity('p1', { id: 'from-a' })), { code: 'POV_REALTIME_BROKER_UNAVAILABLE' },
    'the cut-off instance cannot publish')
  for (const id of ['e1', 'e2', 'e3', 'e4', 'e5']) await b.app.broadcastActivity(activity('p1', { id }))
  await sleep(300)
  t.same(ids(client), ['e0'], 'nothing can arrive while cut off')
  t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' })

  proxy.restore()
  // Nothing else is published: the instance fills the gap from the history by itself.
  await waitFor(() => ids(client).length >= 6, 15_000, 'the missed activities')
  await b.app.broadcastActivity(activity('p1', { id: 'e6' }))
  await waitFor(() => ids(client).length >= 7, 5000, 'e6')
  await sleep(100)
  t.same(ids(client), ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6'])
})

t.test('a flushed Redis: a resume answers recovered: false and replays nothing', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port)
  const b = await instance(t, redis.port)
  const first = await a.connect()
  await first.subscribe('p1')
  await a.app.broadcastActivity(activity('p1', { id: 'e0' }))
  const { cursor } = await a.app.broadcastActivity(activity('p1', { id: 'e1' }))
  await waitFor(() => ids(first).length === 2, 5000, 'e0, e1')

  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.flushall()
  const emptyResume = await b.connect()
  t.match(await emptyResume.subscribe('p1', cursor), { type: 'subscribed', recovered: false }, 'nothing published since the flush')
  await b.app.broadcastActivity(activity('p1', { id: 'e2' }))
  await b.app.broadcastActivity(activity('p1', { id: 'e3' }))

  const resumer = await b.connect()
  t.match(await resumer.subscribe('p1', cursor), { type: 'subscribed', recovered: false }, 'a cursor from before the flush')
  t.same(ids(resumer), [], 'no replay from the wrong place')
  // The live subscriber on the other instance sees the chain broken by e2, reads the new history (e2, e3) and is told.
  await waitFor(() => first.messages.some((m) => m.type === 'resync'), 15_000, 'the resync')
  await b.app.broadcastActivity(activity('p1', { id: 'e4' }))
  await waitFor(() => ids(resumer).includes('e4') && ids(first).includes('e4'), 5000, 'live delivery goes on for both subscribers')
  t.same(ids(first), ['e0', 'e1', 'e2', 'e3', 'e4'], 'what the new history holds was delivered, once, in order')
  const feed = first.messages.filter((m) => m.type === 'activity' || m.type === 'resync')
  const resyncs = feed.flatMap((m, i) => m.type === 'resync' ? [i] : [])
  t.equal(resyncs.length, 1, 'one resync')
  // The history was read when e2 showed the chain broken: the resync names the newest activity that read held.
  t.match(feed[resyncs[0]!], { type: 'resync', povId: 'p1', cursor: feed[resyncs[0]! - 1]!.cursor as string },
    'the resync names the activity just before it: where live delivery went on')
  t.ok(['e2', 'e3'].includes((feed[resyncs[0]! - 1]!.data as { id: string }).id), 'after the new history\'s activities it held')
  t.equal(first.ws.readyState, WebSocket.OPEN, 'the live subscriber\'s socket was never closed')
})

t.test('a replaced Redis (a new, empty server at the same address): a resume answers recovered: false', async (t) => {
  const redis = await startRedisServer(t)
  const a = await instance(t, redis.port)
  const { cursor } = await a.app.broadcastActivity(activity('p1', { id: 'e0' }))
  await redis.restart()
  await publishWhenBack(a, 'e1')
  const resumer = await a.connect()
  t.match(await resumer.subscribe('p1', cursor), { type: 'subscribed', recovered: false })
  t.same(ids(resumer), [])
})

t.test('Redis down at startup: the app starts, publishing fails fast, and everything works once Redis is there', async (t) => {
  const redis = await startRedisServer(t)
  await redis.kill()
  const started = Date.now()
  const a = await instance(t, redis.port, 'faults:', 500)
  t.ok(Date.now() - started < 5000, 'registration did not wait for Redis')
  t.ok(a.logs.some((line) => line.includes('Redis is not reachable yet')), 'and says so')
  const client = await a.connect()
  t.match(await client.subscribe('p1'), { type: 'subscribed' }, 'subscribing works without Redis')
  await t.rejects(a.app.broadcastActivity(activity('p1')), { code: 'POV_REALTIME_BROKER_UNAVAILABLE' })

  await redis.restart()
  // The subscription made while Redis was away starts when it is back: from then on, every activity arrives.
  const published: string[] = []
  for (let i = 0; ids(client).length === 0; i++) {
    if (i === 150) throw new Error('no activity arrived after Redis came back')
    await publishWhenBack(a, `probe-${i}`)
    published.push(`probe-${i}`)
    await sleep(100)
  }
  await a.app.broadcastActivity(activity('p1', { id: 'next' }))
  published.push('next')
  await waitFor(() => ids(client).includes('next'), 5000, 'the next one')
  const first = published.indexOf(ids(client)[0] as string)
  t.ok(first >= 0, 'what arrives is what was published')
  t.same(ids(client), published.slice(first), 'every activity after the first one seen, once, in order')
})

t.test('closing the app closes the connections the broker opened, never the app\'s own client', async (t) => {
  const redis = await startRedisServer(t)
  const admin = new Redis(redis.url, { connectionName: 'admin' })
  t.teardown(() => admin.disconnect())
  const clientNames = async () => ((await admin.client('LIST')) as string).trim().split('\n')
    .map((line) => /name=(\S*)/.exec(line)![1]).filter((name) => name !== 'admin').sort()

  const appRedis = new Redis(redis.url, { connectionName: 'app' })
  t.teardown(() => appRedis.disconnect())
  const withClient = await startServer(t, { broker: createRedisBroker({ redis: appRedis, keyPrefix: 'close:' }) })
  const withUrl = await startServer(t, { broker: createRedisBroker({ redis: redis.url, keyPrefix: 'close:' }) })
  const names = (expected: string[]) => until(clientNames, (now) => JSON.stringify(now) === JSON.stringify(expected))
  t.same(await names(['', 'app', 'pov-realtime:subscriber', 'pov-realtime:subscriber']),
    ['', 'app', 'pov-realtime:subscriber', 'pov-realtime:subscriber'],
    'each broker added one subscriber connection; the URL one also its command connection')

  await withClient.app.close()
  t.same(await names(['', 'app', 'pov-realtime:subscriber']), ['', 'app', 'pov-realtime:subscriber'],
    'the subscriber is gone, the app\'s client stays')
  t.equal(await appRedis.ping(), 'PONG', 'the app\'s client still works')
  await withUrl.app.close()
  t.same(await names(['app']), ['app'], 'both connections the URL broker opened are gone')
})

t.test('createRedisBroker refuses bad options at once', async (t) => {
  t.throws(() => createRedisBroker({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'a{b}:' }), { code: 'POV_REALTIME_INVALID_OPTION' })
  t.throws(() => createRedisBroker({ redis: 'redis://127.0.0.1:6379', timeout: 0 }), { code: 'POV_REALTIME_INVALID_OPTION' })
  t.throws(() => createRedisBroker({ redis: '' }), { code: 'POV_REALTIME_INVALID_OPTION' })
  // An ioredis without sharded subscribers (older than the option): refused at once rather than subscribed on the wrong node.
  const cluster = new Cluster([{ host: '127.0.0.1', port: 6379 }], { lazyConnect: true })
  t.teardown(() => cluster.disconnect())
  delete (cluster.options as { shardedSubscribers?: boolean }).shardedSubscribers
  t.throws(() => createRedisBroker({ redis: cluster }), { code: 'POV_REALTIME_INVALID_OPTION', message: /shardedSubscribers/ })
})
