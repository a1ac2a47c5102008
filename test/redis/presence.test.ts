/**
 * The Redis broker's presence relay, at the broker seam: two or three brokers on a real Redis, each with a sink that
 * records what it would hand the plugin. Members, status and typing cross instances; a PoV that becomes watched gets
 * the members already there, then every change, with nothing lost or stale in between; nothing is published for a
 * PoV whose members did not change.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisBroker } from '../../lib/redis/index.js'
import { announceMember, announceScript, memberField } from '../../lib/redis/presence-scripts.js'
import { povKeys } from '../../lib/redis/scripts.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { listen, testOnEachTarget } from '../helpers/redis-targets.js'
import { active, idle, startBroker } from '../helpers/redis-broker-parts.js'
import { sleep, waitFor } from '../helpers/server.js'

testOnEachTarget('joins, status changes, typing and leaves on one instance reach the other, never the instance itself', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  await a.broker.watch('p1')
  await b.broker.watch('p1')

  a.relay.announce('p1', 'ana', active({ name: 'Ana' }))
  await waitFor(() => b.presence.view('p1').length === 1, 5000, 'the join on b')
  t.same(b.presence.events.map(({ povId, origin, userId, state }) => ({ povId, origin, userId, state })),
    [{ povId: 'p1', origin: a.relay.instanceId, userId: 'ana', state: { status: 'active', info: { name: 'Ana' } } }],
    'b was told which instance holds Ana, and her public info')

  b.relay.announce('p1', 'li', active())
  a.relay.announce('p1', 'ana', idle({ name: 'Ana' }))
  await waitFor(() => b.presence.view('p1')[0] === 'ana:idle', 5000, 'the status change on b')
  await waitFor(() => a.presence.view('p1').length === 1, 5000, 'li on a')
  t.same(a.presence.view('p1'), ['li:active'])

  a.relay.typing('p1', 'ana', true)
  await waitFor(() => b.presence.typings.length === 1, 5000, 'typing on b')
  a.relay.typing('p1', 'ana', false)
  await waitFor(() => b.presence.typings.length === 2, 5000, 'typing stopped on b')
  t.same(b.presence.typings, [
    { povId: 'p1', origin: a.relay.instanceId, userId: 'ana', typing: true },
    { povId: 'p1', origin: a.relay.instanceId, userId: 'ana', typing: false }
  ])

  a.relay.announce('p1', 'ana', null)
  await waitFor(() => b.presence.view('p1').length === 0, 5000, 'the leave on b')
  await sleep(100)
  t.ok(a.presence.events.every((event) => event.origin === b.relay.instanceId), 'a never heard of its own members')
  t.same(a.presence.typings, [], 'a never heard its own typing')
  t.equal(b.presence.events.length, 3, 'b: join, status change, leave, nothing more')
})

testOnEachTarget('a PoV that becomes watched gets the members already there before watch resolves, other PoVs\' never', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  a.relay.announce('p1', 'ana', active())
  a.relay.announce('p1', 'li', idle())
  a.relay.announce('p2', 'bo', active())
  await a.relay.members('p1') // the announcements went first on the same connection

  await b.broker.watch('p1')
  t.same(b.presence.view('p1'), ['ana:active', 'li:idle'], 'the snapshot was reported by the time watch resolved')
  t.same(b.presence.view('p2'), [], 'nothing of a PoV b does not watch')

  a.relay.announce('p1', 'li', active())
  await waitFor(() => b.presence.view('p1').includes('li:active'), 5000, 'a later change')
  b.broker.unwatch('p1')
  const reported = b.presence.events.length
  a.relay.announce('p1', 'ana', null)
  await sleep(200)
  t.equal(b.presence.events.length, reported, 'nothing reported after unwatch')
})

testOnEachTarget('changes racing a new watch: the watcher ends with exactly the announcing instance\'s last states, never a stale one', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const users = Array.from({ length: 20 }, (_, i) => `u${i}`)
  const truth = new Map<string, string | null>()
  let watched: Promise<void> | undefined
  for (let round = 1; round <= 30; round++) {
    for (const [i, userId] of users.entries()) {
      // Every state carries the round it was announced in; some users leave now and then.
      const state = (i + round) % 7 === 0 ? null : { status: round % 2 === 0 ? 'active' : 'idle', info: { round } } as const
      a.relay.announce('p1', userId, state)
      truth.set(userId, state && `${userId}:${state.status}`)
    }
    // b starts watching while the changes stream in (and its snapshot is read among them)
    if (round === 10) watched = Promise.resolve(b.broker.watch('p1'))
    if (round % 5 === 0) await sleep(1)
  }
  await watched
  const expected = [...truth.values()].filter((member) => member !== null).sort()
  await waitFor(() => b.presence.view('p1').join() === expected.join(), 5000, 'b to agree with a')
  await sleep(200)
  t.same(b.presence.view('p1'), expected, 'b shows each member in its last state, and no one who left')
  const stale: string[] = []
  const lastRound = new Map<string, number>()
  for (const { userId, state } of b.presence.events) {
    if (!state) continue
    const round = state.info.round as number
    if (round <= (lastRound.get(userId) ?? 0)) stale.push(`${userId}: round ${round} after ${lastRound.get(userId)}`)
    lastRound.set(userId, round)
  }
  t.same(stale, [], 'no report went back to an older state than one already reported')
})

testOnEachTarget('one member on two instances is reported per instance, so the plugin can tell when the last one goes', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const c = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  await c.broker.watch('p1')
  a.relay.announce('p1', 'ana', active())
  b.relay.announce('p1', 'ana', idle())
  await waitFor(() => c.presence.events.length === 2, 5000, 'both of Ana\'s instances')
  t.same(new Set(c.presence.events.map((event) => event.origin)), new Set([a.relay.instanceId, b.relay.instanceId]))
  a.relay.announce('p1', 'ana', null)
  await waitFor(() => c.presence.events.length === 3, 5000, 'a\'s leave')
  t.same(c.presence.view('p1'), ['ana:idle'], 'Ana is still there through b')
})

testOnEachTarget('members(povId): every other instance\'s members, without this instance\'s own, watched or not', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  a.relay.announce('p1', 'ana', active({ team: 'red' }))
  b.relay.announce('p1', 'li', idle())
  await a.relay.members('p1')
  await b.relay.members('p1')
  t.same(await b.relay.members('p1'), [{ origin: a.relay.instanceId, userId: 'ana', state: { status: 'active', info: { team: 'red' } } }],
    'b, not watching p1, reads it from Redis')
  await b.broker.watch('p1')
  t.same(await b.relay.members('p1'), [{ origin: a.relay.instanceId, userId: 'ana', state: { status: 'active', info: { team: 'red' } } }],
    'the same while watching')
  t.same(await a.relay.members('p1'), [{ origin: b.relay.instanceId, userId: 'li', state: { status: 'idle', info: {} } }])
  t.same(await a.relay.members('p-empty'), [])
})

testOnEachTarget('nothing is published for a PoV whose members did not change; typing is never stored', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const heard: string[] = []
  await listen(t, redis, `${redis.keyPrefix}{p1}:p`, (message) => heard.push(message))

  a.relay.announce('p1', 'ana', active({ n: 1 }))
  a.relay.announce('p1', 'ana', active({ n: 1 }))
  a.relay.announce('p1', 'ana', active({ n: 1 }))
  a.relay.announce('p1', 'nobody', null)
  a.relay.announce('p1', 'ana', idle({ n: 1 }))
  a.relay.typing('p1', 'ana', true)
  await waitFor(() => heard.length >= 3, 5000, 'the messages')
  await sleep(200)
  t.equal(heard.length, 3, 'one join, one status change, one typing: repeats and a no-op leave published nothing')
  const fields = await redis.client.hgetall(`${redis.keyPrefix}{p1}:p`)
  t.same(Object.keys(fields).filter((field) => !field.startsWith('#')), [`${a.relay.instanceId}:ana`], 'one field: Ana on a; no typing stored')
  const ttl = await redis.client.pttl(`${redis.keyPrefix}{p1}:p`)
  t.ok(ttl > 23 * 3600_000 && ttl <= 24 * 3600_000, `the members hash expires a day after its last write (${ttl} ms)`)
})

testOnEachTarget('a clean close: the instance\'s members leave everywhere at once, and Redis keeps nothing of it', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  await b.broker.watch('p1')
  await b.broker.watch('p2')
  for (const povId of ['p1', 'p2']) {
    a.relay.announce(povId, 'ana', active())
    a.relay.announce(povId, 'li', active())
  }
  await waitFor(() => b.presence.view('p1').length === 2 && b.presence.view('p2').length === 2, 5000, 'the members on b')

  const closing = Date.now()
  await a.broker.close()
  await waitFor(() => b.presence.view('p1').length === 0 && b.presence.view('p2').length === 0, 2000, 'the leaves on b')
  const elapsed = Date.now() - closing
  t.ok(elapsed < 1000, `left within ${elapsed} ms of close(), not after a timeout`)
  for (const povId of ['p1', 'p2']) {
    const fields = await redis.client.hkeys(`${redis.keyPrefix}{${povId}}:p`)
    t.same(fields.filter((field) => field.startsWith(a.relay.instanceId)), [], `no field of a left in ${povId}`)
  }
  t.same(await b.relay.members('p3'), [])
})

t.test('presenceTtl must be an integer of at least 100 ms', async (t) => {
  for (const presenceTtl of [0, 99, 1500.5, '15000', -1]) {
    t.throws(() => createRedisBroker({ redis: 'redis://127.0.0.1:6379', presenceTtl: presenceTtl as number }),
      { code: 'POV_REALTIME_INVALID_OPTION', message: /presenceTtl/ }, `refused: ${JSON.stringify(presenceTtl)}`)
  }
  t.doesNotThrow(() => createRedisBroker({ redis: 'redis://127.0.0.1:6379', presenceTtl: 100 }))
})

t.test("a member's changes in flight together take effect in call order, though another client loads the script meanwhile", async (t) => {
  // Another client (instance) loads the script while this one's changes are on their way: the first half finds no
  // script, the second half does. A change sent again after finding none would land after the later ones and leave a
  // stale state in Redis (it did: the 1,000th change stayed, not the 2,000th).
  const server = await startRedisServer(t)
  const redis = new Redis(server.url)
  const other = new Redis(server.url)
  t.teardown(() => { redis.disconnect(); other.disconnect() })
  const keys = povKeys('order:', 'p1')
  for (let round = 0; round < 3; round++) {
    await other.script('FLUSH')
    let loaded: Promise<unknown> = Promise.resolve()
    const changes = Array.from({ length: 2000 }, (_, i) => {
      if (i === 1000) loaded = other.script('LOAD', announceScript.lua)
      return announceMember(redis, keys, 'origin-1', 'ana', { status: i % 2 === 0 ? 'active' : 'idle', info: { n: `${round}-${i}` } })
    })
    await Promise.all([...changes, loaded])
    const stored = JSON.parse((await redis.hget(keys.presence, memberField('origin-1', 'ana')))!) as { info: { n: string } }
    t.equal(stored.info.n, `${round}-1999`, `round ${round}: the last change is the one stored`)
  }
})
