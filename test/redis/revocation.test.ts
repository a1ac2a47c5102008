/**
 * `fastify.povRealtime.revoke` across instances with the Redis broker (PROTOCOL.md, Additions, "Revocation and
 * re-authorization"): it reaches the user's sockets on every instance, resolves only once every instance has applied
 * it, and rejects with a coded error when that cannot be confirmed.
 */
import t from 'tap'
import type { Message, TestClient } from '../helpers/client.js'
import { member, membersSeen, settle } from '../helpers/presence.js'
import { connectAs } from '../helpers/members.js'
import { startRedisInstance, startRedisInstances } from '../helpers/redis-instances.js'
import { sharedRedis, startRedisServer } from '../helpers/redis-server.js'
import { controlChannel, listen, testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, startServer, waitFor } from '../helpers/server.js'
import { closed } from '../helpers/socket-waits.js'
import { createRedisBroker } from '../../lib/redis/index.js'

/** Every message `client` received about `povId` after `after` (a message it received). */
const aboutPovAfter = (client: TestClient, povId: string, after: Message): Message[] =>
  client.messages.slice(client.messages.indexOf(after) + 1)
    .filter((m) => m.povId === povId || (m.data as { povId?: string } | undefined)?.povId === povId)

t.test("revoke on one instance ends the user's subscription of the PoV on every instance, and nothing of it follows", async (t) => {
  const redis = await sharedRedis(t)
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: true })
  const onA = await connectAs(a!, 'u1')
  const onB = await connectAs(b!, 'u1')
  const other = await connectAs(b!, 'u2')
  await onA.subscribe('p1')
  await onA.subscribe('p2')
  await onB.subscribe('p1')
  await other.subscribe('p1')
  await waitFor(() => membersSeen(other, 'p1').length === 2, 5000, 'u1 to be a member of p1')

  const told = [onA, onB].map((client) => client.next((m) => m.type === 'unsubscribed', 5000))
  await a!.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' })
  // Right after it resolved, from the other instance: an activity and typing on p1.
  await b!.app.broadcastActivity(activity('p1', { id: 'after' }))
  other.send({ type: 'typing', povId: 'p1', typing: true })
  await waitFor(() => other.activities('p1').length === 1, 5000, 'the other user to get the activity')
  const [toldA, toldB] = await Promise.all(told)
  t.same(toldA, { type: 'unsubscribed', povId: 'p1', reason: 'revoked' }, 'the socket on the revoking instance is told')
  t.same(toldB, { type: 'unsubscribed', povId: 'p1', reason: 'revoked' }, 'and so is the one on the other instance')
  await waitFor(() => membersSeen(other, 'p1').length === 1, 5000, 'u1 to leave presence')
  t.same(membersSeen(other, 'p1'), [member('u2')], 'u1 left the presence of p1 everywhere')
  await settle(onA, onB, other)
  t.same(aboutPovAfter(onA, 'p1', toldA!), [], 'nothing of p1 after it on instance A')
  t.same(aboutPovAfter(onB, 'p1', toldB!), [], 'nothing of p1 after it on instance B')
  t.same([...onA.activities('p1'), ...onB.activities('p1')], [], 'the activity published right after reached neither')

  await b!.app.broadcastActivity(activity('p2', { id: 'p2-after' }))
  t.match(await onA.next('activity', 5000), { data: { id: 'p2-after', povId: 'p2' } }, "the user's other PoV is untouched")
  t.match(a!.app.povRealtime.stats(), { revoked: 1, subscriptions: 1 })
  t.match(b!.app.povRealtime.stats(), { revoked: 1, subscriptions: 1 })
})

testOnEachTarget('revoke without a PoV closes every socket of the user on every instance with 4003', async (t, redis) => {
  const [a, b, c] = await startRedisInstances(t, redis, 3)
  const tabs = [await connectAs(a!, 'u1'), await connectAs(b!, 'u1'), await connectAs(b!, 'u1')]
  const other = await connectAs(c!, 'u2')
  for (const tab of tabs) await tab.subscribe('p1')
  await other.subscribe('p1')
  await c!.app.povRealtime.revoke({ userId: 'u1' })
  const closes = await Promise.all(tabs.map((tab) => closed(tab)))
  t.same(closes.map(({ code }) => code), [4003, 4003, 4003], 'every tab, on both instances, closed with 4003')
  t.equal(other.ws.readyState, other.ws.OPEN, "the other user's socket stays")
  await a!.app.broadcastActivity(activity('p1', { id: 'still' }))
  t.match(await other.next('activity', 5000), { data: { id: 'still' } })
  t.match(a!.app.povRealtime.stats(), { closed: { 4003: 1 }, revoked: 1 })
  t.match(b!.app.povRealtime.stats(), { closed: { 4003: 2 }, revoked: 2 })
})

testOnEachTarget('revoke resolves only once every instance has applied it', async (t, redis) => {
  const servers = await startRedisInstances(t, redis, 3)
  const clients = await Promise.all(servers.map((server) => connectAs(server, 'u1')))
  for (const client of clients) await client.subscribe('p1')
  const started = process.hrtime.bigint()
  await servers[0]!.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' })
  // Read at once, with nothing awaited in between: each instance has already ended its subscription.
  const took = Number(process.hrtime.bigint() - started) / 1e6
  t.same(servers.map((server) => server.app.povRealtime.stats().subscriptions), [0, 0, 0], 'no instance still has one')
  t.same(servers.map((server) => server.app.povRealtime.stats().revoked), [1, 1, 1])
  t.comment(`revoke across 3 instances took ${took.toFixed(2)} ms`)
})

testOnEachTarget('revoke rejects with POV_REALTIME_BROKER_UNAVAILABLE when an instance that received it does not confirm', async (t, redis) => {
  const a = await startRedisInstance(t, redis, {}, { timeout: 300 })
  // A listener on the control channel that never confirms: PUBLISH (SPUBLISH on a cluster) counts it as an instance.
  await listen(t, redis, controlChannel(redis), () => {})
  const client = await connectAs(a, 'u1')
  await client.subscribe('p1')
  const started = Date.now()
  await t.rejects(a.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' }),
    { code: 'POV_REALTIME_BROKER_UNAVAILABLE', message: /1 of 2 instances did not confirm/ })
  t.ok(Date.now() - started >= 280, 'after the broker timeout')
  t.match(await client.next('unsubscribed'), { povId: 'p1', reason: 'revoked' }, 'applied on this instance all the same')
})

t.test('revoke rejects with POV_REALTIME_BROKER_UNAVAILABLE while Redis is down, and still applies it on this instance', async (t) => {
  const redis = await startRedisServer(t)
  const server = await startServer(t, {
    broker: createRedisBroker({ redis: { host: '127.0.0.1', port: redis.port, retryStrategy: () => 100 }, keyPrefix: 'revoke:', timeout: 500 })
  })
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await redis.kill()
  await t.rejects(server.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' }), { code: 'POV_REALTIME_BROKER_UNAVAILABLE' })
  t.match(await client.next('unsubscribed'), { povId: 'p1', reason: 'revoked' }, "this instance's sockets are revoked")
  t.equal(client.ws.readyState, client.ws.OPEN, 'the broker fault closed no socket')
})
