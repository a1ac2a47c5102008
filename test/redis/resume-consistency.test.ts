/**
 * Replay and live delivery meet when a subscriber resumes: what the replay sends and what arrives live must add up
 * to each missed activity exactly once. These tests make instance A's pub/sub connection lag on purpose (a proxy
 * holds what Redis sends to it) so that the replay read and the live stream disagree, then let it catch up.
 */
import { createRedisBroker } from '../../lib/redis/index.js'
import type { Message, TestClient } from '../helpers/client.js'
import { throughStallingProxies } from '../helpers/redis-proxied.js'
import { testOnEachTarget, type RedisTarget } from '../helpers/redis-targets.js'
import { activity, sleep, startServer, waitFor, type Teardown } from '../helpers/server.js'

const SUBSCRIBER = 'pov-realtime:subscriber' // the name the broker gives its pub/sub connection

/**
 * Instance A reaches Redis through proxies that can make its subscriber connection (on a cluster: its sharded
 * subscriber connections) lag; B publishes directly.
 */
async function setup (t: Teardown, redis: RedisTarget) {
  const proxy = await throughStallingProxies(t, redis)
  const a = await startServer(t, { broker: createRedisBroker({ redis: proxy.redis, keyPrefix: redis.keyPrefix }) })
  const b = await startServer(t, { broker: redis.createBroker() })
  return { proxy, a, b }
}

const ids = (client: TestClient) => client.activities('p1').map((data) => data.id)
/** The messages after the last `subscribed` (what a resume produced), by type and activity id. */
const afterSubscribed = (client: TestClient) => client.messages.map((m: Message) => m.type === 'activity' ? (m.data as { id: string }).id : m.type)

testOnEachTarget('a resume while this instance\'s live stream lags: the replay leaves to live delivery what it has not delivered yet', async (t, redis) => {
  const { proxy, a, b } = await setup(t, redis)
  const watcher = await a.connect()
  await watcher.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'e0' }))
  const e0 = await watcher.next('activity')

  proxy.hold(SUBSCRIBER)
  for (const id of ['e1', 'e2', 'e3']) await b.app.broadcastActivity(activity('p1', { id }))
  // Redis holds e1..e3 in the history; instance A has delivered none of them yet.
  const resumer = await a.connect()
  t.match(await resumer.subscribe('p1', e0.cursor as string), { type: 'subscribed', recovered: true })
  t.same(ids(watcher), ['e0'], 'A\'s live stream is held: its watcher has none of them yet')
  proxy.release()

  await waitFor(() => ids(resumer).length >= 3 && ids(watcher).length >= 4, 5000, 'the lagging stream to catch up')
  await b.app.broadcastActivity(activity('p1', { id: 'e4' }))
  await waitFor(() => ids(resumer).length >= 4, 5000, 'e4')
  await sleep(100) // room for a duplicate to show up
  t.same(ids(resumer), ['e1', 'e2', 'e3', 'e4'], 'the resumer got each missed activity once, in order')
  t.same(ids(watcher), ['e0', 'e1', 'e2', 'e3', 'e4'], 'the live watcher too')
})

testOnEachTarget('the window between subscribing a PoV\'s channel and reading its history: activities published in it reach a resumer once', async (t, redis) => {
  const { proxy, a, b } = await setup(t, redis)
  const elsewhere = await b.connect()
  await elsewhere.subscribe('p1')
  await b.app.broadcastActivity(activity('p1', { id: 'e0' }))
  const e0 = await elsewhere.next('activity')

  // p1 is not watched on A yet: the resume makes A subscribe its channel. Redis carries out the SUBSCRIBE, but A
  // hears of it (and of the activities published right after) only on release, after e1 and e2 are out.
  proxy.hold(SUBSCRIBER)
  const resumer = await a.connect()
  const answer = resumer.subscribe('p1', e0.cursor as string)
  await sleep(200)
  for (const id of ['e1', 'e2']) await b.app.broadcastActivity(activity('p1', { id }))
  proxy.release()
  t.match(await answer, { type: 'subscribed', recovered: true })

  await b.app.broadcastActivity(activity('p1', { id: 'e3' }))
  await waitFor(() => ids(resumer).length >= 3, 5000, 'e3')
  await sleep(100)
  t.same(ids(resumer), ['e1', 'e2', 'e3'], 'each activity once: e1 and e2 by the replay, e3 live')
})

testOnEachTarget('resuming on a lagging instance with a cursor from another instance: nothing already received comes again', async (t, redis) => {
  const { proxy, a, b } = await setup(t, redis)
  const watcher = await a.connect()
  await watcher.subscribe('p1') // p1's live stream runs on A
  const client = await b.connect()
  await client.subscribe('p1')

  proxy.hold(SUBSCRIBER)
  for (const id of ['e1', 'e2', 'e3']) await b.app.broadcastActivity(activity('p1', { id }))
  await waitFor(() => ids(client).length === 3, 5000, 'e1..e3 on B')
  const last = client.messages.filter((m) => m.type === 'activity').at(-1)!
  client.terminate()

  // The client has everything up to e3; A has not delivered e1..e3 yet when it resumes there.
  const again = await a.connect()
  const answer = again.subscribe('p1', last.cursor as string)
  await sleep(200)
  proxy.release()
  t.match(await answer, { type: 'subscribed', recovered: true })
  await b.app.broadcastActivity(activity('p1', { id: 'e4' }))
  await waitFor(() => ids(again).length >= 1, 5000, 'e4')
  await sleep(100)
  t.same(afterSubscribed(again), ['subscribed', 'e4'], 'only what came after the cursor')
  t.same(ids(watcher), ['e1', 'e2', 'e3', 'e4'], 'the live watcher on A got everything once')
})
