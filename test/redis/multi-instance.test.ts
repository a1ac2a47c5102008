import { Redis } from 'ioredis'
import t from 'tap'
import { createRedisBroker } from '../../lib/redis/index.js'
import type { TestClient } from '../helpers/client.js'
import { startRedisInstances as startInstances } from '../helpers/redis-instances.js'
import { sharedRedis } from '../helpers/redis-server.js'
import { subscribedChannels, subscriberCount, testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, sleep, startServer, waitFor } from '../helpers/server.js'

const activityFrames = (client: TestClient, povId: string) =>
  client.messages.filter((m) => m.type === 'activity' && (m.data as { povId: string }).povId === povId)
const cursorsOf = (client: TestClient, povId: string) => activityFrames(client, povId).map((m) => m.cursor as string)
const idsOf = (client: TestClient, povId: string) => client.activities(povId).map((a) => a.id as string)
/** Stream order of this broker's cursors (`<epoch>.<ms>-<seq>`). */
const streamOrder = (a: string, b: string) => {
  const [aMs, aSeq] = a.split('.')[1]!.split('-').map(BigInt) as [bigint, bigint]
  const [bMs, bSeq] = b.split('.')[1]!.split('-').map(BigInt) as [bigint, bigint]
  return aMs === bMs ? Number(aSeq - bSeq) : Number(aMs - bMs)
}

testOnEachTarget('concurrent publishers on three instances: every subscriber gets every activity once, all in the same cursor order', async (t, redis) => {
  const servers = await startInstances(t, redis, 3)
  const clients: TestClient[] = []
  for (const server of servers) {
    for (let i = 0; i < 2; i++) {
      const client = await server.connect()
      t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
      clients.push(client)
    }
  }
  const perInstance = 40
  const published = await Promise.all(servers.map((server, s) => Promise.all(
    Array.from({ length: perInstance }, (_, i) => server.app.broadcastActivity(activity('p1', { id: `s${s}-${i}` })))
  )))
  const total = perInstance * servers.length
  for (const client of clients) await waitFor(() => activityFrames(client, 'p1').length >= total, 15_000, 'every activity')

  const reference = cursorsOf(clients[0]!, 'p1')
  t.equal(new Set(reference).size, total, 'no cursor twice')
  t.same([...reference].sort(streamOrder), reference, 'delivered in cursor order')
  t.same(new Set(idsOf(clients[0]!, 'p1')), new Set(published.flat().map((_, i) => `s${Math.floor(i / perInstance)}-${i % perInstance}`)),
    'every published activity arrived')
  for (const [i, client] of clients.entries()) {
    t.same(cursorsOf(client, 'p1'), reference, `subscriber ${i} saw the same sequence`)
  }
  const publishedCursors = published.flat().map((result) => result.cursor)
  t.same(new Set(publishedCursors), new Set(reference), 'broadcastActivity resolved with the cursors subscribers received')
  t.same(published.flat().map((result) => result.delivered), published.flat().map(() => 2), 'delivered: the publishing instance\'s two sockets')
  // Publishing in one instance's order: its own activities keep their relative order.
  for (let s = 0; s < servers.length; s++) {
    const own = idsOf(clients[0]!, 'p1').filter((id) => id.startsWith(`s${s}-`))
    t.same(own, Array.from({ length: perInstance }, (_, i) => `s${s}-${i}`), `instance ${s}'s activities in publish order`)
  }
})

testOnEachTarget('an activity reaches only the subscribers of its PoV, on every instance', async (t, redis) => {
  const [a, b] = await startInstances(t, redis, 2)
  const onP1 = await a!.connect()
  const onP2 = await b!.connect()
  const idle = await b!.connect()
  await onP1.subscribe('p1')
  await onP2.subscribe('p2')
  const result = await b!.app.broadcastActivity(activity('p1', { id: 'only-p1' }))
  t.equal(result.delivered, 0, 'no socket on the publishing instance watches p1')
  t.match(await onP1.next('activity'), { data: { id: 'only-p1' } })
  await b!.app.broadcastActivity(activity('p2', { id: 'only-p2' }))
  t.match(await onP2.next('activity'), { data: { id: 'only-p2' } })
  t.same(idsOf(onP1, 'p2'), [], 'the p1 subscriber got nothing of p2')
  t.same(idsOf(onP2, 'p1'), [], 'the p2 subscriber got nothing of p1')
  t.same(idle.activities(), [], 'a socket with no subscription got nothing')
})

testOnEachTarget('an instance subscribes only to the channels of PoVs its sockets watch', async (t, redis) => {
  const [a] = await startInstances(t, redis, 1)
  // PoV channels (`<prefix>{<povId>}`, sharded on a cluster); the control channels every instance listens to are not counted.
  const channels = async () => await subscribedChannels(redis, `${redis.keyPrefix}{*`)
  t.same(await channels(), [], 'nothing watched, nothing subscribed')
  const first = await a!.connect()
  const second = await a!.connect()
  await first.subscribe('p1')
  await second.subscribe('p1')
  await second.subscribe('p2')
  t.same(await channels(), [`${redis.keyPrefix}{p1}`, `${redis.keyPrefix}{p2}`])
  await first.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  t.same(await channels(), [`${redis.keyPrefix}{p1}`, `${redis.keyPrefix}{p2}`], 'p1 still has a watcher')
  second.close()
  await waitFor(() => a!.app.povRealtime.stats().connections === 1, 5000, 'the socket to go')
  let now: string[] = []
  await waitFor(() => { channels().then((list) => { now = list }, () => {}); return now.length === 0 }, 5000, 'the channels to be dropped')
  t.same(now, [], 'no watcher left, no channel subscribed')
})

testOnEachTarget('subscribing, unsubscribing and subscribing again in a burst leaves one live subscription', async (t, redis) => {
  const [a, b] = await startInstances(t, redis, 2)
  const client = await a!.connect()
  for (let i = 0; i < 5; i++) {
    client.send({ type: 'subscribe', povId: 'p1' })
    client.send({ type: 'unsubscribe', povId: 'p1' })
  }
  client.send({ type: 'subscribe', povId: 'p1' })
  await waitFor(() => client.messages.filter((m) => m.type === 'subscribed').length === 6, 5000, 'every answer')
  t.same(client.messages.map((m) => m.type), [...Array(5).fill(['subscribed', 'unsubscribed']).flat(), 'subscribed'], 'answered in order')
  t.equal(await subscriberCount(redis, `${redis.keyPrefix}{p1}`), 1, 'the channel is subscribed once')
  await b!.app.broadcastActivity(activity('p1', { id: 'after-burst' }))
  await waitFor(() => idsOf(client, 'p1').length === 1, 5000, 'the activity')
  await b!.app.broadcastActivity(activity('p1', { id: 'second' }))
  await waitFor(() => idsOf(client, 'p1').length === 2, 5000, 'the second activity')
  t.same(idsOf(client, 'p1'), ['after-burst', 'second'], 'each once')
})

testOnEachTarget('a client that reconnects to another instance gets exactly what it missed, then live activities', async (t, redis) => {
  const [a, b, c] = await startInstances(t, redis, 3)
  const first = await a!.connect()
  await first.subscribe('p1')
  await a!.app.broadcastActivity(activity('p1', { id: 'seen' }))
  const seen = await first.next('activity')
  first.close()
  await waitFor(() => a!.app.povRealtime.stats().connections === 0, 5000, 'the socket to go')

  await b!.app.broadcastActivity(activity('p1', { id: 'missed-1' }))
  await c!.app.broadcastActivity(activity('p1', { id: 'missed-2' }))
  await b!.app.broadcastActivity(activity('p1', { id: 'missed-3' }))

  const again = await c!.connect()
  t.match(await again.subscribe('p1', seen.cursor as string), { type: 'subscribed', povId: 'p1', recovered: true })
  t.same(idsOf(again, 'p1'), ['missed-1', 'missed-2', 'missed-3'], 'exactly the missed ones, oldest first')
  await a!.app.broadcastActivity(activity('p1', { id: 'live' }))
  await waitFor(() => idsOf(again, 'p1').length === 4, 5000, 'the live activity')
  t.same(idsOf(again, 'p1'), ['missed-1', 'missed-2', 'missed-3', 'live'])
})

testOnEachTarget('resuming while other instances keep publishing: every resumed subscriber has each activity exactly once', async (t, redis) => {
  const servers = await startInstances(t, redis, 3, { history: { size: 10_000 } })
  const watcher = await servers[0]!.connect()
  await watcher.subscribe('p1')
  await servers[1]!.app.broadcastActivity(activity('p1', { id: 'start' }))
  const start = await watcher.next('activity')

  const state = { publishing: true }
  let count = 0
  const publishers = servers.map(async (server, s) => {
    while (state.publishing) {
      await server.app.broadcastActivity(activity('p1', { id: `n${s}-${count++}` }))
    }
  })
  // Subscribers resume from `start` on every instance while the stream moves, some on a PoV already watched there.
  const resumed: TestClient[] = []
  for (let round = 0; round < 4; round++) {
    for (const server of servers) {
      const client = await server.connect()
      t.match(await client.subscribe('p1', start.cursor as string), { recovered: true })
      resumed.push(client)
    }
  }
  state.publishing = false
  await Promise.all(publishers)
  await waitFor(() => cursorsOf(watcher, 'p1').length === count + 1, 10_000, 'the watcher to have everything')
  const all = cursorsOf(watcher, 'p1').slice(1) // after `start`
  t.ok(all.length >= servers.length, `published ${all.length} while resuming`)
  for (const [i, client] of resumed.entries()) {
    await waitFor(() => cursorsOf(client, 'p1').length >= all.length, 10_000, `resumed subscriber ${i} to catch up`)
  }
  await sleep(200) // room for a duplicate to show up
  for (const [i, client] of resumed.entries()) {
    t.same(cursorsOf(client, 'p1'), all, `resumed subscriber ${i}: every activity after the cursor, once, in order`)
  }
})

t.test('the app may pass its own ioredis client, even one with an ioredis keyPrefix of its own', async (t) => {
  const redis = await sharedRedis(t)
  const appClient = new Redis(redis.url, { keyPrefix: redis.keyPrefix })
  t.teardown(() => appClient.disconnect())
  const keyPrefix = `${redis.keyPrefix}broker:`
  const a = await startServer(t, { broker: createRedisBroker({ redis: appClient, keyPrefix }) })
  const b = await startServer(t, { broker: createRedisBroker({ redis: appClient, keyPrefix }) })
  const client = await a.connect()
  await client.subscribe('p1')
  const { cursor } = await b.app.broadcastActivity(activity('p1', { id: 'e1' }))
  t.match(await client.next('activity'), { cursor, data: { id: 'e1' } })
  await b.app.broadcastActivity(activity('p1', { id: 'e2' }))
  const resumed = await b.connect()
  t.match(await resumed.subscribe('p1', cursor), { recovered: true })
  t.same(idsOf(resumed, 'p1'), ['e2'])
  t.equal(await redis.client.exists(`${redis.keyPrefix}${keyPrefix}{p1}:h`), 1, 'both prefixes apply to the keys')
})
