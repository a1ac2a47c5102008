/**
 * The history kept in Redis behaves like the in-process window: bounded by `size` and by `ttl`, a resume is
 * `recovered` only when every entry after the cursor is still held, and it survives the instance that wrote it.
 */
import type { PovRealtimeOptions } from '../../index.js'
import { CURSOR_LIFETIME_MS } from '../../lib/redis/broker.js'
import type { TestClient } from '../helpers/client.js'
import { testOnEachTarget, type RedisTarget } from '../helpers/redis-targets.js'
import { activity, sleep, startServer, type Teardown, type TestServer } from '../helpers/server.js'

async function instance (t: Teardown, redis: RedisTarget, options: Partial<PovRealtimeOptions> = {}): Promise<TestServer> {
  return await startServer(t, { ...options, broker: redis.createBroker() })
}

/** Publishes one activity per id on `server` and returns their cursors. */
async function publish (server: TestServer, ...activityIds: string[]): Promise<string[]> {
  const cursors: string[] = []
  for (const id of activityIds) cursors.push((await server.app.broadcastActivity(activity('p1', { id }))).cursor)
  return cursors
}

async function resume (server: TestServer, since: string): Promise<{ recovered: unknown, ids: unknown[], client: TestClient }> {
  const client = await server.connect()
  const answer = await client.subscribe('p1', since)
  return { recovered: answer.recovered, ids: client.activities('p1').map((data) => data.id), client }
}

testOnEachTarget('cursors fit the protocol and are ordered per PoV', async (t, redis) => {
  const server = await instance(t, redis)
  const cursors = await publish(server, 'a', 'b', 'c')
  for (const cursor of cursors) t.match(cursor, /^[A-Za-z0-9_.:-]{1,128}$/)
  t.equal(new Set(cursors.map((cursor) => cursor.split('.')[0])).size, 1, 'one epoch for one PoV\'s history')
})

testOnEachTarget('a PoV\'s cursors are positions in its own stream: other PoVs\' traffic leaves no trace in them', async (t, redis) => {
  const server = await instance(t, redis)
  const quiet: string[] = []
  let busy = ''
  for (let i = 0; i < 10; i++) {
    quiet.push((await server.app.broadcastActivity(activity('p1', { id: `q${i}` }))).cursor)
    for (let j = 0; j < 37; j++) busy = (await server.app.broadcastActivity(activity('p2', { id: `b${i}-${j}` }))).cursor
  }
  // A stream id is `<ms>-<n>`: n counts the stream's own entries within one millisecond, so it starts at 0 in each new
  // millisecond and goes up by one per entry of that PoV, whatever the other PoVs receive.
  const ids = quiet.map((cursor) => cursor.split('.')[1]!.split('-').map(Number) as [number, number])
  for (let i = 1; i < ids.length; i++) {
    const [[ms, n], [previousMs, previousN]] = [ids[i]!, ids[i - 1]!]
    t.ok(ms > previousMs ? n === 0 : ms === previousMs && n === previousN + 1,
      `${quiet[i - 1]} → ${quiet[i]}: 37 activities of p2 between them leave no gap`)
  }
  t.not(quiet[0]!.split('.')[0], busy.split('.')[0], 'each PoV has its own epoch')
  const client = await server.connect()
  t.match(await client.subscribe('p1', busy), { type: 'subscribed', recovered: false }, 'p2\'s cursor is worth nothing for p1')
  t.match(await client.subscribe('p2', quiet.at(-1)), { type: 'subscribed', recovered: false }, 'and p1\'s for p2')
  t.same(client.activities(), [])
})

testOnEachTarget('history is bounded by size: a resume from before the window answers recovered: false', async (t, redis) => {
  const server = await instance(t, redis, { history: { size: 3 } })
  const [c1, c2, c3] = await publish(server, 'e1', 'e2', 'e3', 'e4', 'e5')
  t.match(await resume(server, c1!), { recovered: false, ids: [] }, 'e2 is gone: the gap cannot be filled')
  t.match(await resume(server, c2!), { recovered: true, ids: ['e3', 'e4', 'e5'] }, 'from the last dropped entry, the window is exact')
  t.match(await resume(server, c3!), { recovered: true, ids: ['e4', 'e5'] })
  t.equal(await redis.client.xlen(`${redis.keyPrefix}{p1}:h`), 3, 'Redis holds size entries')
})

testOnEachTarget('history is bounded by age, and its key expires when the PoV goes quiet', async (t, redis) => {
  const server = await instance(t, redis, { history: { size: 100, ttl: 400 } })
  const [old, last] = await publish(server, 'old', 'last-before-pause')
  const historyTtl = await redis.client.pttl(`${redis.keyPrefix}{p1}:h`)
  t.ok(historyTtl > 0 && historyTtl <= 400, `the history expires ttl after the last activity (${historyTtl} ms)`)
  const metaTtl = await redis.client.pttl(`${redis.keyPrefix}{p1}:m`)
  t.ok(metaTtl > 400 && metaTtl <= CURSOR_LIFETIME_MS, 'the cursor bookkeeping lives longer')

  await sleep(600)
  t.equal(await redis.client.exists(`${redis.keyPrefix}{p1}:h`), 0, 'the quiet PoV\'s history is gone from Redis')
  t.match(await resume(server, last!), { recovered: true, ids: [] }, 'nothing was missed after the newest cursor')
  t.match(await resume(server, old!), { recovered: false, ids: [] }, 'an entry after this cursor has expired')
  await publish(server, 'after-pause')
  t.match(await resume(server, last!), { recovered: true, ids: ['after-pause'] }, 'a quiet period does not break a cursor')
  t.match(await resume(server, old!), { recovered: false, ids: [] })
})

testOnEachTarget('history outlives the instance that wrote it: a new instance resumes from it', async (t, redis) => {
  const first = await instance(t, redis)
  const [c1] = await publish(first, 'e1', 'e2')
  await first.app.close()
  const second = await instance(t, redis)
  t.match(await resume(second, c1!), { recovered: true, ids: ['e2'] })
})

testOnEachTarget('a cursor that is not this broker\'s answers recovered: false', async (t, redis) => {
  const server = await instance(t, redis)
  const [cursor] = await publish(server, 'e1')
  for (const foreign of ['abc.1', 'nonsense', `${cursor!.split('.')[0]}.99999999999999-0`, `otherEpoch0.${cursor!.split('.')[1]}`]) {
    t.match(await resume(server, foreign), { recovered: false, ids: [] }, foreign)
  }
})

testOnEachTarget('with history off, every resume answers recovered: false and activities still cross instances', async (t, redis) => {
  const a = await instance(t, redis, { history: false })
  const b = await instance(t, redis, { history: false })
  const client = await a.connect()
  await client.subscribe('p1')
  const [cursor] = await publish(b, 'e1', 'e2')
  t.match(await client.next('activity'), { data: { id: 'e1' } })
  t.match(await client.next('activity'), { data: { id: 'e2' } })
  t.match(await resume(a, cursor!), { recovered: false, ids: [] })
})
