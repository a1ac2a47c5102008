/**
 * What `broadcastActivity` tells the caller about a publish whose answer came late or never: a rejection says
 * whether the activity surely was not published (`outcomeUnknown: false`) or may have been (`outcomeUnknown: true`),
 * and an answer that Redis gave in time is not thrown away because this instance's event loop read it late.
 */
import t from 'tap'
import { createRedisBroker } from '../../lib/redis/index.js'
import type { TestClient } from '../helpers/client.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, startServer, waitFor } from '../helpers/server.js'

const TIMEOUT = 500

const ids = (client: TestClient) => client.activities('p1').map((data) => data.id)

/** Keeps this process's event loop busy for `ms` (a fan-out burst does the same to a real instance). */
function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy */ }
}

testOnEachTarget('a publish that Redis answered in time resolves even when a busy event loop reads the answer after the timeout', async (t, redis) => {
  const server = await startServer(t, { broker: redis.createBroker({ timeout: TIMEOUT }) })
  const client = await server.connect()
  await client.subscribe('p1')

  const published = server.app.broadcastActivity(activity('p1', { id: 'burst' }))
  // Runs after the broker has written the command (it is sent at the latest in a setImmediate queued before this
  // one); Redis answers at once, but this instance reads the answer only after the timeout has passed.
  setImmediate(() => blockEventLoop(TIMEOUT * 3))
  const result = await published.then((value) => value, (err: unknown) => err)
  t.match(result, { cursor: String, delivered: 1 }, 'broadcastActivity resolved: the activity was published')
  await waitFor(() => ids(client).includes('burst'), 5000, 'the activity')
  t.same(ids(client), ['burst'], 'the subscriber received it once')
})

// Stand-alone only: it stops its own redis-server (on a cluster, a dead master is cluster.test.ts's failover).
t.test('Redis down: the rejection says the activity was surely not published (outcomeUnknown: false)', async (t) => {
  const redis = await startRedisServer(t)
  const server = await startServer(t, { broker: createRedisBroker({ redis: { host: '127.0.0.1', port: redis.port }, keyPrefix: 'outcome:' }) })
  await redis.kill()
  await t.rejects(server.app.broadcastActivity(activity('p1', { id: 'down' })),
    { code: 'POV_REALTIME_BROKER_UNAVAILABLE', statusCode: 503, outcomeUnknown: false })
})

// Stand-alone only: it pauses its own redis-server (a cluster master paused with SIGSTOP: cluster.test.ts).
t.test('a hung Redis: the rejection says the activity may have been published (outcomeUnknown: true), and it was', async (t) => {
  const redis = await startRedisServer(t)
  const server = await startServer(t, {
    broker: createRedisBroker({ redis: { host: '127.0.0.1', port: redis.port }, keyPrefix: 'outcome:', timeout: TIMEOUT })
  })
  const client = await server.connect()
  await client.subscribe('p1')
  redis.pause()
  t.teardown(() => redis.resume())
  await t.rejects(server.app.broadcastActivity(activity('p1', { id: 'hung' })),
    { code: 'POV_REALTIME_BROKER_UNAVAILABLE', outcomeUnknown: true, message: /may have been published/ })
  redis.resume()
  await waitFor(() => ids(client).includes('hung'), 10_000, 'the activity Redis ran once it thawed')
  t.same(ids(client), ['hung'], 'the activity reported as "outcome unknown" was in fact published')
})
