/**
 * Read receipts across real plugin instances sharing a real Redis (PROTOCOL.md, "Read receipts"): `read` events
 * cross instances, the read state in `subscribed` and the server functions agree everywhere, marks outlive an
 * instance, and a cursor that is not one of the PoV's is refused on every path.
 */
import type { FastifyInstance } from 'fastify'
import { READ_EVENT_COALESCE_MS } from '../../lib/constants.js'
import type { Message, TestClient } from '../helpers/client.js'
import { startRedisInstance, startRedisInstances } from '../helpers/redis-instances.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, sleep, waitFor } from '../helpers/server.js'
import { connectAs } from '../helpers/members.js'

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** How long a `read` event may take to cross instances on a loaded machine before a test gives up on it. */
const CROSSING = 5000

/** Publishes `count` activities to `povId`; resolves their cursors in publish order. */
async function publish (app: FastifyInstance, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await app.broadcastActivity(activity(povId))).cursor)
  return cursors
}

/** The `read` events a client has received, optionally of one PoV. */
const readEvents = (client: TestClient, povId?: string): Message[] =>
  client.messages.filter((m) => m.type === 'read' && (povId === undefined || m.povId === povId))

const readOf = (userId: string, cursor: string) => (m: Message) => m.type === 'read' && m.userId === userId && m.cursor === cursor

/** Long enough for `read` events gathered anywhere to have gone out and crossed. */
const afterCoalescing = () => sleep(READ_EVENT_COALESCE_MS * 6)

testOnEachTarget('a read on A reaches every subscriber of the PoV on B, the reader\'s own tab there included, once each', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { readReceipts: true })
  const [cursor] = await publish(b!.app, 'p1', 1)
  const reader = await connectAs(a!, 'u1')
  const readerOnB = await connectAs(b!, 'u1')
  const colleagueOnB = await connectAs(b!, 'u2')
  const colleagueOnA = await connectAs(a!, 'u3')
  const elsewhereOnB = await connectAs(b!, 'u4')
  for (const client of [reader, readerOnB, colleagueOnB, colleagueOnA]) await client.subscribe('p1')
  await elsewhereOnB.subscribe('p2')

  const before = Date.now()
  reader.send({ type: 'read', povId: 'p1', cursor })
  for (const [what, client] of Object.entries({ reader, readerOnB, colleagueOnB, colleagueOnA })) {
    const event = await client.next('read', CROSSING)
    t.same(Object.keys(event).sort(), ['cursor', 'povId', 'readAt', 'type', 'userId'], what)
    t.match(event, { type: 'read', povId: 'p1', userId: 'u1', cursor, readAt: ISO_TIME }, what)
    const readAt = Date.parse(event.readAt as string)
    t.ok(readAt >= before - 5 && readAt <= Date.now() + 5, `${what}: readAt is the server's time of the read`)
  }
  await afterCoalescing()
  for (const client of [reader, readerOnB, colleagueOnB, colleagueOnA]) t.equal(readEvents(client).length, 1, 'exactly one event each')
  t.same(readEvents(elsewhereOnB), [], 'a socket of B that watches only another PoV gets nothing')
  t.match(await colleagueOnB.request({ type: 'reads', povId: 'p1' }, 'reads'), { reads: [{ userId: 'u1', cursor }] },
    'reads on B lists the mark moved on A')
})

testOnEachTarget('a mark moved on A: subscribed on B carries the reader\'s readCursor and unread; other users keep their own', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { readReceipts: true })
  const cursors = await publish(a!.app, 'p1', 5)
  const reader = await connectAs(a!, 'u1')
  t.same(await reader.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: 5 })
  reader.send({ type: 'read', povId: 'p1', cursor: cursors[1] })
  await reader.next('read')

  const tabOnB = await connectAs(b!, 'u1')
  t.same(await tabOnB.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[1], unread: 3 }, 'the reader\'s tab on B')
  const colleague = await connectAs(b!, 'u2')
  t.same(await colleague.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: 5 }, 'another user on B')
  t.same(await b!.app.povRealtime.unreadCounts('u1', ['p1', 'p2']), {
    p1: { readCursor: cursors[1], unread: 3 },
    p2: { readCursor: null, unread: 0 }
  }, 'unreadCounts on B')

  await publish(b!.app, 'p1', 2)
  t.equal(await a!.app.povRealtime.markRead('u1', 'p1', cursors[4]!), true)
  await tabOnB.next(readOf('u1', cursors[4]!), CROSSING)
  t.same(await tabOnB.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[4], unread: 2 },
    'a repeated subscribe on B: the newer mark, and what B published after it')
})

testOnEachTarget('marks survive a restart of an instance: a new instance on the same Redis serves them and subscribed carries them', async (t, redis) => {
  const first = await startRedisInstance(t, redis, { readReceipts: true })
  const other = await startRedisInstance(t, redis, { readReceipts: true })
  const cursors = await publish(first.app, 'p1', 4)
  t.equal(await first.app.povRealtime.markRead('u1', 'p1', cursors[2]!), true)
  const watcherOnOther = await connectAs(other, 'u2')
  await watcherOnOther.subscribe('p1')
  await first.app.close()

  const restarted = await startRedisInstance(t, redis, { readReceipts: true })
  t.match(await restarted.app.povRealtime.reads('p1'), [{ userId: 'u1', cursor: cursors[2], readAt: ISO_TIME }], 'reads()')
  const reader = await connectAs(restarted, 'u1')
  t.same(await reader.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[2], unread: 1 }, 'subscribed')
  t.match(await reader.request({ type: 'reads', povId: 'p1' }, 'reads'), { reads: [{ userId: 'u1', cursor: cursors[2] }] }, 'reads')
  t.equal(await restarted.app.povRealtime.markRead('u1', 'p1', cursors[0]!), false, 'the mark still only moves forward')

  reader.send({ type: 'read', povId: 'p1', cursor: cursors[3] })
  t.match(await reader.next('read'), { userId: 'u1', cursor: cursors[3] }, 'the new instance moves marks')
  t.match(await watcherOnOther.next('read', CROSSING), { userId: 'u1', cursor: cursors[3] },
    'and the instance that stayed hears of it')
  await afterCoalescing()
  t.equal(readEvents(watcherOnOther).length, 1, 'only the move after the restart sent an event there')
})

testOnEachTarget('markRead and reads from a route handler on one instance; the clients of the other see the marks', async (t, redis) => {
  const withRoutes = (app: FastifyInstance) => {
    app.post<{ Params: { povId: string, userId: string }, Body: { cursor: string } }>('/povs/:povId/read/:userId', async (request) => {
      const moved = await app.povRealtime.markRead(request.params.userId, request.params.povId, request.body.cursor)
      return { moved }
    })
    app.get<{ Params: { povId: string } }>('/povs/:povId/reads', async (request) => await app.povRealtime.reads(request.params.povId))
  }
  const a = await startRedisInstance(t, redis, { readReceipts: true }, {}, withRoutes)
  const b = await startRedisInstance(t, redis, { readReceipts: true })
  const cursors = await publish(b.app, 'p1', 3)
  const watcher = await connectAs(b, 'u2')
  const ownTab = await connectAs(b, 'u1')
  await watcher.subscribe('p1')
  await ownTab.subscribe('p1')

  const post = (userId: string, cursor: string) => fetch(`${a.httpUrl}/povs/p1/read/${userId}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cursor })
  })
  const moved = await post('u1', cursors[1]!)
  t.equal(moved.status, 200)
  t.same(await moved.json(), { moved: true })
  for (const client of [watcher, ownTab]) {
    t.match(await client.next('read', CROSSING), { type: 'read', povId: 'p1', userId: 'u1', cursor: cursors[1], readAt: ISO_TIME },
      'a mark moved by a route on A reaches B\'s subscribers')
  }
  t.same(await (await post('u1', cursors[0]!)).json(), { moved: false }, 'an older cursor does not move it')

  watcher.send({ type: 'read', povId: 'p1', cursor: cursors[2] })
  await watcher.next(readOf('u2', cursors[2]!))
  const reads = await (await fetch(`${a.httpUrl}/povs/p1/reads`)).json() as Array<{ userId: string }>
  t.match(reads.sort((x, y) => x.userId.localeCompare(y.userId)), [
    { userId: 'u1', cursor: cursors[1], readAt: ISO_TIME },
    { userId: 'u2', cursor: cursors[2], readAt: ISO_TIME }
  ], 'reads() in a route on A lists a mark moved on the wire on B')

  const refused = await post('u1', `${cursors[2]!.split('.')[0]!}.99999999999999-0`)
  t.equal(refused.status, 400, 'a cursor newer than the PoV\'s latest activity is the caller\'s fault')
  t.match(await refused.json(), { code: 'POV_REALTIME_INVALID_CURSOR' })
  await afterCoalescing()
  t.equal(readEvents(watcher).length, 2, 'B\'s subscriber got the route\'s move and its own, nothing for the refused ones')
})

testOnEachTarget('a cursor of another PoV, or a bogus one, is refused on the wire and by markRead, on either instance', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { readReceipts: true })
  const [real] = await publish(a!.app, 'p1', 1)
  const [ofAnotherPov] = await publish(b!.app, 'p2', 1)
  const [epoch, id] = real!.split('.') as [string, string]
  const [ms] = id.split('-') as [string, string]
  const bogus: Record<string, string> = {
    garbage: 'garbage',
    'another PoV\'s cursor': ofAnotherPov!,
    'p1\'s epoch, a later id': `${epoch}.${BigInt(ms) + 1000n}-0`,
    'p2\'s epoch, p1\'s id': `${ofAnotherPov!.split('.')[0]!}.${id}`,
    'an epoch p1 never had': `${epoch === 'e0' ? 'e1' : 'e0'}.${id}`,
    'no epoch': id
  }
  const readerOnB = await connectAs(b!, 'u1')
  const watcherOnA = await connectAs(a!, 'u2')
  await readerOnB.subscribe('p1')
  await watcherOnA.subscribe('p1')
  for (const [what, cursor] of Object.entries(bogus)) {
    t.match(await readerOnB.request({ type: 'read', povId: 'p1', cursor }, 'error'),
      { type: 'error', code: 'INVALID_MESSAGE', povId: 'p1', message: /cursor/ }, `wire, on B: ${what}`)
    await t.rejects(a!.app.povRealtime.markRead('u1', 'p1', cursor), { code: 'POV_REALTIME_INVALID_CURSOR', statusCode: 400 },
      `markRead on A: ${what}`)
  }
  await afterCoalescing()
  t.same(readEvents(watcherOnA), [], 'no refused cursor moved a mark')
  t.same(readEvents(readerOnB), [])
  t.same(await a!.app.povRealtime.reads('p1'), [])
  t.same(await b!.app.povRealtime.reads('p2'), [], 'nor one on the PoV a cursor came from')
  t.equal(b!.app.povRealtime.stats().rejected.INVALID_MESSAGE, Object.keys(bogus).length)

  readerOnB.send({ type: 'read', povId: 'p1', cursor: real })
  await watcherOnA.next(readOf('u1', real!), CROSSING)
  t.equal(readerOnB.ws.readyState, readerOnB.ws.OPEN, 'the socket stayed open, and a real cursor still works')
  await waitFor(() => readEvents(readerOnB).length === 1, CROSSING)
})

testOnEachTarget('marks of several users moved together on A reach B\'s subscribers as reads frames carrying them all, once each', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { readReceipts: true })
  const cursors = await publish(a!.app, 'p1', 3)
  const watcherOnA = await connectAs(a!, 'w1')
  const watcherOnB = await connectAs(b!, 'w2')
  await watcherOnA.subscribe('p1')
  await watcherOnB.subscribe('p1')

  await Promise.all(['u1', 'u2', 'u3'].map((userId, i) => a!.app.povRealtime.markRead(userId, 'p1', cursors[i]!)))
  const expected = [['u1', cursors[0]], ['u2', cursors[1]], ['u3', cursors[2]]]
  const told = (client: TestClient) => client.messages
    .flatMap((m) => m.type === 'reads' ? m.reads as Message[] : m.type === 'read' ? [m] : [])
    .map((mark) => [mark.userId, mark.cursor]).sort()
  const batch = await watcherOnA.next('reads')
  t.same((batch.reads as Message[]).map((mark) => [mark.userId, mark.cursor]).sort(), expected,
    'on A, where the marks moved in one window: one reads frame with all three')
  await waitFor(() => told(watcherOnB).length === 3, CROSSING, 'B to tell all three marks')
  await afterCoalescing()
  t.same(told(watcherOnB), expected, 'on B every mark once, whether in one frame or over windows')
  const frames = watcherOnB.messages.filter((m) => m.type === 'reads' || m.type === 'read')
  t.comment(`B's subscriber got the three marks in ${frames.length} frame(s)`)
  for (const frame of frames) if (frame.type === 'reads') t.ok((frame.reads as Message[]).length > 1, 'a reads frame carries several marks')
})
