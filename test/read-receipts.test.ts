/**
 * Read receipts with the in-process broker (PROTOCOL.md, "Read receipts"), over real sockets: marks that only move
 * forward, cursors checked against the PoV they were issued for, `read` events to every subscriber (coalesced),
 * `reads`, the read state in `subscribed`, the server functions, and `authorizeSubscription` keeping marks private.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { InProcessBroker } from '../lib/in-process/index.js'
import { MAX_READS_PER_ANSWER, READ_EVENT_COALESCE_MS } from '../lib/constants.js'
import type { Message, TestClient } from './helpers/client.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { tabsColleagueElsewhere } from './helpers/members.js'

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** Publishes `count` activities to `povId`; resolves their cursors in publish order. */
async function publish (app: FastifyInstance, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await app.broadcastActivity(activity(povId))).cursor)
  return cursors
}

/** The `read` events a client has received, optionally of one PoV. */
function readEvents (client: TestClient, povId?: string): Message[] {
  return client.messages.filter((m) => m.type === 'read' && (povId === undefined || m.povId === povId))
}

/** The frames telling a client of moved marks: `read` events and unsolicited `reads`. */
function markFrames (client: TestClient): Message[] {
  return client.messages.filter((m) => m.type === 'read' || m.type === 'reads')
}

/** Every moved mark a client was told of, in order, whichever frame carried it. */
function markMoves (client: TestClient): Message[] {
  return markFrames(client).flatMap((m) => m.type === 'read' ? [m] : m.reads as Message[])
}

/** Waits long enough for any gathered `read` event to have gone out. */
const afterCoalescing = () => sleep(READ_EVENT_COALESCE_MS * 4)

t.test('a read goes to every subscriber of the PoV: the reader\'s other tabs, the sending tab, and other users', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const [cursor] = await publish(server.app, 'p1', 1)
  const { tab1, tab2, colleague, elsewhere } = await tabsColleagueElsewhere(server)

  const before = Date.now()
  tab1.send({ type: 'read', povId: 'p1', cursor })
  for (const client of [tab1, tab2, colleague]) {
    const event = await client.next('read')
    t.same(Object.keys(event).sort(), ['cursor', 'povId', 'readAt', 'type', 'userId'])
    t.match(event, { type: 'read', povId: 'p1', userId: 'u1', cursor, readAt: ISO_TIME })
    const readAt = Date.parse(event.readAt as string)
    t.ok(readAt >= before - 5 && readAt <= Date.now() + 5, 'readAt is the server\'s time of the read')
  }
  await afterCoalescing()
  t.same(readEvents(elsewhere), [], 'a socket that watches only another PoV gets nothing')
  for (const client of [tab1, tab2, colleague]) t.equal(readEvents(client).length, 1, 'exactly one event each')
})

t.test('a mark only moves forward: an older or the same cursor changes nothing and sends no event', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const cursors = await publish(server.app, 'p1', 3)
  const reader = await server.connect()
  const watcher = await server.connect({ claims: { userId: 'u2' } })
  await reader.subscribe('p1')
  await watcher.subscribe('p1')

  reader.send({ type: 'read', povId: 'p1', cursor: cursors[1] })
  await watcher.next('read')
  reader.send({ type: 'read', povId: 'p1', cursor: cursors[0] })
  reader.send({ type: 'read', povId: 'p1', cursor: cursors[1] })
  await reader.request({ type: 'ping' }, 'pong')
  await afterCoalescing()
  t.same(readEvents(watcher).map((m) => m.cursor), [cursors[1]], 'no event for the older or the same cursor')
  t.equal(reader.messages.filter((m) => m.type === 'error').length, 0, 'an older cursor is not an error')
  t.match(await reader.request({ type: 'reads', povId: 'p1' }, 'reads'), { reads: [{ userId: 'u1', cursor: cursors[1] }] },
    'the mark stayed where it was')

  t.equal(await server.app.povRealtime.markRead('u1', 'p1', cursors[0]!), false, 'markRead: older cursor, not moved')
  t.equal(await server.app.povRealtime.markRead('u1', 'p1', cursors[1]!), false, 'markRead: same cursor, not moved')
  t.equal(await server.app.povRealtime.markRead('u1', 'p1', cursors[2]!), true, 'markRead: newer cursor, moved')
  t.match(await watcher.next('read'), { userId: 'u1', cursor: cursors[2] }, 'markRead sends the event too')
  t.match(await server.app.povRealtime.reads('p1'), [{ userId: 'u1', cursor: cursors[2] }])
})

t.test('a cursor not issued for that PoV is refused: INVALID_MESSAGE on the wire, POV_REALTIME_INVALID_CURSOR from markRead', async (t) => {
  const previous = await startServer(t, { readReceipts: true })
  const [beforeRestart] = await publish(previous.app, 'p1', 1)
  await previous.app.close()

  const server = await startServer(t, { readReceipts: true })
  const [real] = await publish(server.app, 'p1', 1)
  const [ofAnotherPov] = await publish(server.app, 'p2', 1)
  const [epoch, seq, tag] = real!.split('.') as [string, string, string]
  const bogus: Record<string, string> = {
    garbage: 'garbage',
    'a forged tag': `${epoch}.${seq}.${tag.endsWith('A') ? tag.slice(0, -1) + 'B' : tag.slice(0, -1) + 'A'}`,
    'no tag': `${epoch}.${seq}`,
    'a future seq with a copied tag': `${epoch}.${(parseInt(seq, 36) + 5).toString(36)}.${tag}`,
    'another PoV\'s cursor': ofAnotherPov!,
    'a cursor from before a restart': beforeRestart!
  }
  const reader = await server.connect()
  const watcher = await server.connect({ claims: { userId: 'u2' } })
  await reader.subscribe('p1')
  await watcher.subscribe('p1')
  for (const [what, cursor] of Object.entries(bogus)) {
    t.match(await reader.request({ type: 'read', povId: 'p1', cursor }, 'error'),
      { type: 'error', code: 'INVALID_MESSAGE', povId: 'p1', message: /cursor/ }, `wire: ${what}`)
    await t.rejects(server.app.povRealtime.markRead('u1', 'p1', cursor), { code: 'POV_REALTIME_INVALID_CURSOR', statusCode: 400 },
      `markRead: ${what}`)
  }
  await t.rejects(server.app.povRealtime.markRead('u1', 'p1', 'not a cursor!'), { code: 'POV_REALTIME_INVALID_CURSOR' })
  await t.rejects(server.app.povRealtime.markRead('u1', 'p1', 42 as unknown as string), { code: 'POV_REALTIME_INVALID_CURSOR' })
  await afterCoalescing()
  t.same(readEvents(watcher), [], 'no refused cursor moved a mark')
  t.same(await server.app.povRealtime.reads('p1'), [])
  t.equal(server.app.povRealtime.stats().rejected.INVALID_MESSAGE, Object.keys(bogus).length)
  t.equal(reader.ws.readyState, reader.ws.OPEN, 'the socket stays open')

  // Once a real cursor has been checked (and is remembered for the PoV's next readers), the bogus ones still fail.
  t.equal(await server.app.povRealtime.markRead('u1', 'p1', real!), true)
  for (const [what, cursor] of Object.entries(bogus)) {
    await t.rejects(server.app.povRealtime.markRead('u2', 'p1', cursor), { code: 'POV_REALTIME_INVALID_CURSOR' }, `after a real one: ${what}`)
  }
  t.equal(await server.app.povRealtime.markRead('u2', 'p1', real!), true, 'the remembered cursor moves the next reader\'s mark')
  t.same((await server.app.povRealtime.reads('p1')).map((mark) => [mark.userId, mark.cursor]), [['u1', real], ['u2', real]])

  // A cursor remembered once checked for its own PoV is still refused for another one.
  t.equal(await server.app.povRealtime.markRead('u1', 'p2', ofAnotherPov!), true)
  await t.rejects(server.app.povRealtime.markRead('u3', 'p1', ofAnotherPov!), { code: 'POV_REALTIME_INVALID_CURSOR' },
    'another PoV\'s cursor, remembered for that PoV')
  t.same((await server.app.povRealtime.reads('p1')).map((mark) => mark.userId), ['u1', 'u2'])
})

t.test('read and reads need a subscription to the PoV; a PoV authorizeSubscription refuses leaks no mark', async (t) => {
  const server = await startServer(t, {
    readReceipts: true,
    authorizeSubscription: (user, povId) => povId !== 'secret' || user.userId === 'insider'
  })
  const [cursor] = await publish(server.app, 'secret', 1)
  const insider = await server.connect({ claims: { userId: 'insider' } })
  await insider.subscribe('secret')
  insider.send({ type: 'read', povId: 'secret', cursor })
  await insider.next('read')

  const outsider = await server.connect({ claims: { userId: 'outsider' } })
  t.match(await outsider.subscribe('secret'), { type: 'error', code: 'FORBIDDEN', povId: 'secret' })
  t.match(await outsider.request({ type: 'reads', povId: 'secret' }, 'error'), { code: 'INVALID_MESSAGE', povId: 'secret' })
  t.match(await outsider.request({ type: 'read', povId: 'secret', cursor }, 'error'), { code: 'INVALID_MESSAGE', povId: 'secret' })
  await server.app.povRealtime.markRead('someone-else', 'secret', cursor!)
  await insider.next((m) => m.type === 'read' && m.userId === 'someone-else')
  await afterCoalescing()
  t.same(outsider.messages.filter((m) => m.type === 'read' || m.type === 'reads'), [], 'no mark of the refused PoV reached it')
  t.notOk(JSON.stringify(outsider.messages).includes(cursor!), 'not even the cursor')

  const unsubscribed = await server.connect({ claims: { userId: 'u9' } })
  await unsubscribed.subscribe('p1')
  await unsubscribed.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  t.match(await unsubscribed.request({ type: 'reads', povId: 'p1' }, 'error'), { code: 'INVALID_MESSAGE', message: /subscribe/ },
    'after unsubscribing, reads is refused as well')
})

t.test('reads answers every user\'s mark on the PoV, and only users who have one', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const cursors = await publish(server.app, 'p1', 3)
  await publish(server.app, 'p2', 1)
  const client = await server.connect({ claims: { userId: 'u3' } })
  await client.subscribe('p1')
  t.same(await client.request({ type: 'reads', povId: 'p1' }, 'reads'), { type: 'reads', povId: 'p1', reads: [] }, 'nobody has a mark yet')

  await server.app.povRealtime.markRead('u1', 'p1', cursors[0]!)
  await server.app.povRealtime.markRead('u2', 'p1', cursors[2]!)
  await server.app.povRealtime.markRead('u1', 'p1', cursors[1]!)
  const answer = await client.request({ type: 'reads', povId: 'p1' }, 'reads')
  t.equal(answer.povId, 'p1')
  const reads = (answer.reads as Array<{ userId: string, cursor: string, readAt: string }>).sort((a, b) => a.userId.localeCompare(b.userId))
  t.match(reads, [
    { userId: 'u1', cursor: cursors[1], readAt: ISO_TIME },
    { userId: 'u2', cursor: cursors[2], readAt: ISO_TIME }
  ])
  t.equal(reads.length, 2, 'u3, who has no mark, is not listed')
  t.same(Object.keys(reads[0]!).sort(), ['cursor', 'readAt', 'userId'])
})

t.test('a reads answer lists at most MAX_READS_PER_ANSWER marks, the most recent; the server function lists all', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const [cursor] = await publish(server.app, 'crowded', 1)
  await server.app.povRealtime.markRead('earliest', 'crowded', cursor!)
  await sleep(5) // so that every later mark has a later readAt
  for (let i = 0; i < MAX_READS_PER_ANSWER; i++) await server.app.povRealtime.markRead(`reader-${i}`, 'crowded', cursor!)
  // Past the coalescing window: a subscriber of that instant would get the window's marks too, as unsolicited `reads`.
  await sleep(READ_EVENT_COALESCE_MS * 2)
  const client = await server.connect()
  await client.subscribe('crowded')
  const { reads } = await client.request({ type: 'reads', povId: 'crowded' }, 'reads') as unknown as { reads: Array<{ userId: string }> }
  t.equal(reads.length, MAX_READS_PER_ANSWER)
  t.notOk(reads.some((mark) => mark.userId === 'earliest'), 'the oldest mark is the one left out')
  t.equal((await server.app.povRealtime.reads('crowded')).length, MAX_READS_PER_ANSWER + 1)
})

t.test('marks that move in one window go out in frames of at most MAX_READS_PER_ANSWER marks', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const [cursor] = await publish(server.app, 'crowded', 1)
  const client = await server.connect()
  await client.subscribe('crowded')
  await Promise.all(Array.from({ length: MAX_READS_PER_ANSWER + 1 }, (_, i) =>
    server.app.povRealtime.markRead(`reader-${i}`, 'crowded', cursor!)))
  const marksIn = (m: Message): number => m.type === 'reads' ? (m.reads as unknown[]).length : m.type === 'read' ? 1 : 0
  await waitFor(() => client.messages.reduce((sum, m) => sum + marksIn(m), 0) === MAX_READS_PER_ANSWER + 1, 5000, 'every mark')
  const frames = client.messages.filter((m) => marksIn(m) > 0)
  t.ok(frames.length >= 2, `${frames.length} frames`)
  t.ok(frames.every((m) => marksIn(m) <= MAX_READS_PER_ANSWER), 'none carries more than an answer may')
  const users = new Set(frames.flatMap((m) => m.type === 'reads' ? (m.reads as Array<{ userId: string }>).map((r) => r.userId) : [m.userId]))
  t.equal(users.size, MAX_READS_PER_ANSWER + 1, 'every user\'s mark once')
})

t.test('subscribed carries readCursor and unread: the whole window without a mark, what follows the mark with one', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const cursors = await publish(server.app, 'p1', 4)
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: 4 })
  t.same(await client.subscribe('empty'), { type: 'subscribed', povId: 'empty', readCursor: null, unread: 0 })

  client.send({ type: 'read', povId: 'p1', cursor: cursors[1] })
  await client.next('read')
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[1], unread: 2 },
    'a repeated subscribe carries the new state')

  const otherTab = await server.connect()
  t.same(await otherTab.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[1], unread: 2 },
    'another tab of the same user sees the mark')
  const colleague = await server.connect({ claims: { userId: 'u2' } })
  t.same(await colleague.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: 4 },
    'another user has their own state')

  await server.app.povRealtime.markRead('u1', 'p1', cursors[3]!)
  const third = await server.connect()
  t.same(await third.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursors[3], unread: 0 }, 'all read')
})

t.test('after a resume\'s replay, subscribed carries recovered and the read state', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const seen = await publish(server.app, 'p1', 2)
  await server.app.povRealtime.markRead('u1', 'p1', seen[0]!)
  const missed = await publish(server.app, 'p1', 2)
  const client = await server.connect()
  const subscribed = await client.subscribe('p1', seen[1])
  t.same(subscribed, { type: 'subscribed', povId: 'p1', recovered: true, readCursor: seen[0], unread: 3 })
  t.same(client.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), missed, 'the replay came first')
  const [live] = await publish(server.app, 'p1', 1)
  t.equal((await client.next('activity')).cursor, live, 'then live activities')
})

t.test('with history off, unread is null and the mark is still kept', async (t) => {
  const server = await startServer(t, { readReceipts: true, history: false })
  const [cursor] = await publish(server.app, 'p1', 2)
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: null })
  client.send({ type: 'read', povId: 'p1', cursor })
  t.match(await client.next('read'), { cursor })
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: cursor, unread: null })
  t.same(await server.app.povRealtime.unreadCounts('u1', ['p1']), { p1: { readCursor: cursor, unread: null } })
})

t.test('a mark older than the history window is kept, and unread counts the whole window', async (t) => {
  const server = await startServer(t, { readReceipts: true, history: { size: 3 } })
  const [first] = await publish(server.app, 'p1', 1)
  await server.app.povRealtime.markRead('u1', 'p1', first!)
  const later = await publish(server.app, 'p1', 5)
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: first, unread: 3 },
    'the window holds 3, all after the mark')
  t.equal(await server.app.povRealtime.markRead('u1', 'p1', later[0]!), true,
    'a cursor the window has dropped is still one of the PoV\'s: the mark moves to it')
  t.equal(await server.app.povRealtime.markRead('u1', 'p1', first!), false, 'and does not move back')
  t.same(await server.app.povRealtime.unreadCounts('u1', ['p1']), { p1: { readCursor: later[0], unread: 3 } })
  await server.app.povRealtime.markRead('u1', 'p1', later[3]!)
  t.same(await server.app.povRealtime.unreadCounts('u1', ['p1']), { p1: { readCursor: later[3], unread: 1 } })
})

t.test('marks are bounded per user: beyond the bound, that user\'s own least recently moved mark is forgotten', async (t) => {
  const broker = new InProcessBroker({ maxReadMarksPerUser: 3 })
  const server = await startServer(t, { readReceipts: true, broker })
  const [a] = await publish(server.app, 'a', 1)
  const [b] = await publish(server.app, 'b', 1)
  const [c1, c2] = await publish(server.app, 'c', 2)
  const [d] = await publish(server.app, 'd', 1)
  await server.app.povRealtime.markRead('u2', 'a', a!)
  await server.app.povRealtime.markRead('u1', 'a', a!)
  await server.app.povRealtime.markRead('u1', 'b', b!)
  await server.app.povRealtime.markRead('u1', 'c', c1!)
  await server.app.povRealtime.markRead('u1', 'a', a!) // not moved: does not count as recent
  t.equal(server.app.povRealtime.stats().limitTrips.readMarksPerUser, 0, 'at the bound: nothing forgotten yet')
  t.equal(broker.readMarks.size, 4)
  await server.app.povRealtime.markRead('u1', 'd', d!)
  t.equal(broker.readMarks.size, 4, 'one past the bound: one mark forgotten')
  t.same(await server.app.povRealtime.unreadCounts('u1', ['a', 'b', 'c', 'd']), {
    a: { readCursor: null, unread: 1 },
    b: { readCursor: b, unread: 0 },
    c: { readCursor: c1, unread: 1 },
    d: { readCursor: d, unread: 0 }
  }, 'u1\'s mark on a, their least recently moved, is gone')
  t.same(await server.app.povRealtime.unreadCounts('u2', ['a']), { a: { readCursor: a, unread: 0 } }, 'u2\'s mark on the same PoV stays')
  await server.app.povRealtime.markRead('u1', 'c', c2!) // moved: now u1's most recent
  await server.app.povRealtime.markRead('u1', 'a', a!)
  t.same((await server.app.povRealtime.unreadCounts('u1', ['a', 'b', 'c', 'd'])).b, { readCursor: null, unread: 1 },
    'a moved mark counts as recent: b goes next')
  t.equal(server.app.povRealtime.stats().limitTrips.readMarksPerUser, 2, 'each forgotten mark is a trip')
  const warnings = server.logs.filter((line) => line.includes('"limit":"readMarksPerUser"'))
  t.equal(warnings.length, 1, 'logged once for the user')
  t.match(JSON.parse(warnings[0]!), { level: 40, userId: 'u1', max: 3 }, 'at warn, with the user id')
})

t.test('one user\'s marks never push out another user\'s, however many PoVs the user marks', async (t) => {
  const broker = new InProcessBroker({ maxReadMarksPerUser: 50 })
  const server = await startServer(t, { readReceipts: true, broker })
  const victims = ['v1', 'v2', 'v3']
  const [shared] = await publish(server.app, 'shared', 1)
  for (const victim of victims) await server.app.povRealtime.markRead(victim, 'shared', shared!)
  for (let i = 0; i < 500; i++) {
    const [cursor] = await publish(server.app, `spam-${i}`, 1)
    await server.app.povRealtime.markRead('attacker', `spam-${i}`, cursor!)
  }
  t.equal(broker.readMarks.size, 50 + victims.length, 'the attacker keeps at most their own bound')
  t.same((await server.app.povRealtime.reads('shared')).map((mark) => mark.userId), victims, 'every victim\'s mark is still there')
  t.equal(server.app.povRealtime.stats().limitTrips.readMarksPerUser, 450)
})

t.test('marks are bounded per PoV: beyond the bound, the PoV\'s least recently moved mark is forgotten', async (t) => {
  const broker = new InProcessBroker({ maxReadMarksPerPov: 2 })
  const server = await startServer(t, { readReceipts: true, broker })
  const [p1, p2] = await publish(server.app, 'p', 2)
  const [other] = await publish(server.app, 'other', 1)
  await server.app.povRealtime.markRead('u1', 'p', p1!)
  await server.app.povRealtime.markRead('u1', 'other', other!)
  await server.app.povRealtime.markRead('u2', 'p', p1!)
  await server.app.povRealtime.markRead('u1', 'p', p2!) // moved: u2's is now the least recent on p
  t.equal(server.app.povRealtime.stats().limitTrips.readMarksPerPov, 0, 'at the bound')
  await server.app.povRealtime.markRead('u3', 'p', p1!)
  t.same((await server.app.povRealtime.reads('p')).map((mark) => mark.userId), ['u1', 'u3'], 'u2\'s mark on p is forgotten')
  t.same((await server.app.povRealtime.reads('other')).map((mark) => mark.userId), ['u1'], 'another PoV\'s marks are not touched')
  t.equal(server.app.povRealtime.stats().limitTrips.readMarksPerPov, 1)
  t.match(JSON.parse(server.logs.find((line) => line.includes('"limit":"readMarksPerPov"'))!), { level: 40, povId: 'p', max: 2 })
})

t.test('marks that move in one window go out as one frame per subscriber: reads for several users, read for one', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const cursors = await publish(server.app, 'p1', 3)
  const watcher = await server.connect({ claims: { userId: 'w' } })
  const elsewhere = await server.connect({ claims: { userId: 'x' } })
  await watcher.subscribe('p1')
  await elsewhere.subscribe('p2')

  // Three users' marks move in the same turn, so in the same window.
  await Promise.all([
    server.app.povRealtime.markRead('u1', 'p1', cursors[0]!),
    server.app.povRealtime.markRead('u2', 'p1', cursors[1]!),
    server.app.povRealtime.markRead('u3', 'p1', cursors[2]!)
  ])
  const batch = await watcher.next('reads')
  t.same(Object.keys(batch).sort(), ['povId', 'reads', 'type'])
  t.equal(batch.povId, 'p1')
  const reads = batch.reads as Array<Record<string, unknown>>
  t.same(reads.map((mark) => [mark.userId, mark.cursor]).sort(), [['u1', cursors[0]], ['u2', cursors[1]], ['u3', cursors[2]]],
    'one reads frame carries every moved mark')
  for (const mark of reads) {
    t.same(Object.keys(mark).sort(), ['cursor', 'readAt', 'userId'], 'each mark has the shape of a reads answer\'s')
    t.match(mark.readAt, ISO_TIME)
  }

  // One user's mark alone in the next window: a read event, as before.
  await server.app.povRealtime.markRead('u2', 'p1', cursors[2]!)
  t.match(await watcher.next('read'), { type: 'read', povId: 'p1', userId: 'u2', cursor: cursors[2] })
  await afterCoalescing()
  t.equal(watcher.messages.filter((m) => m.type === 'reads' || m.type === 'read').length, 2, 'two windows, two frames')
  t.same(elsewhere.messages.filter((m) => m.type === 'reads' || m.type === 'read'), [], 'nothing to a socket of another PoV')
})

t.test('a burst of marks is coalesced: per window, one frame per subscriber, one mark per user, the newest', async (t) => {
  const server = await startServer(t, { readReceipts: true, rateLimit: false })
  const cursors = await publish(server.app, 'busy', 40)
  const readers = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((userId) => server.connect({ claims: { userId } })))
  const watcher = await server.connect({ claims: { userId: 'w' } })
  for (const client of [...readers, watcher]) await client.subscribe('busy')

  const started = performance.now()
  for (const cursor of cursors) for (const reader of readers) reader.send({ type: 'read', povId: 'busy', cursor })
  const newest = cursors.at(-1)
  await waitFor(() => markMoves(watcher).filter((m) => m.cursor === newest).length === readers.length, 5000,
    'every reader\'s newest mark')
  const elapsed = performance.now() - started
  await afterCoalescing()

  const frames = markFrames(watcher)
  const moves = markMoves(watcher)
  const windows = Math.ceil(elapsed / READ_EVENT_COALESCE_MS) + 1
  const marks = cursors.length * readers.length
  t.comment(`${marks} marks in ${elapsed.toFixed(0)} ms reached the watcher as ${frames.length} frames carrying ${moves.length} marks`)
  t.ok(frames.length <= windows, `at most one frame per ${READ_EVENT_COALESCE_MS} ms window (${frames.length} <= ${windows})`)
  t.ok(moves.length < marks / 4, 'far fewer marks told than moved')
  for (const frame of frames) {
    if (frame.type === 'read') continue
    const users = (frame.reads as Array<{ userId: string }>).map((mark) => mark.userId)
    t.ok(users.length > 1, 'a reads frame carries several users (one alone is a read event)')
    t.equal(new Set(users).size, users.length, 'one mark per user per frame')
  }
  for (const reader of ['r1', 'r2', 'r3', 'r4']) {
    const ofReader = moves.filter((m) => m.userId === reader)
    t.equal(ofReader.at(-1)?.cursor, newest, `${reader}'s last mark told is the newest`)
    const order = ofReader.map((m) => cursors.indexOf(m.cursor as string))
    t.same(order, [...order].sort((x, y) => x - y), `${reader}'s marks never go backwards`)
  }
  t.same(markFrames(readers[0]!), frames, 'the readers get the same frames as the watcher')
})

t.test('markRead, reads and unreadCounts from a route handler', async (t) => {
  let cursors: string[] = []
  const server = await startServer(t, { readReceipts: true }, undefined, (app) => {
    app.post<{ Params: { povId: string }, Body: { cursor: string } }>('/povs/:povId/read', async (request) => {
      const moved = await app.povRealtime.markRead('u1', request.params.povId, request.body.cursor)
      return { moved, reads: await app.povRealtime.reads(request.params.povId) }
    })
    app.get<{ Querystring: { povs: string } }>('/unread', async (request) => {
      return await app.povRealtime.unreadCounts('u1', request.query.povs.split(','))
    })
  })
  cursors = await publish(server.app, 'p1', 3)
  await publish(server.app, 'p2', 2)
  const watcher = await server.connect({ claims: { userId: 'u2' } })
  await watcher.subscribe('p1')

  const post = (povId: string, cursor: string) => fetch(`${server.httpUrl}/povs/${povId}/read`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cursor })
  })
  const moved = await post('p1', cursors[1]!)
  t.equal(moved.status, 200)
  const body = await moved.json() as { moved: boolean, reads: Array<Record<string, unknown>> }
  t.equal(body.moved, true)
  t.match(body.reads, [{ userId: 'u1', cursor: cursors[1], readAt: ISO_TIME }])
  t.match(await watcher.next('read'), { povId: 'p1', userId: 'u1', cursor: cursors[1] }, 'subscribers hear of it')
  t.equal((await (await post('p1', cursors[0]!)).json() as { moved: boolean }).moved, false)

  const refused = await post('p1', 'bogus')
  t.equal(refused.status, 400, 'a bad cursor is the client\'s fault')
  t.match(await refused.json(), { code: 'POV_REALTIME_INVALID_CURSOR' })

  const unread = await fetch(`${server.httpUrl}/unread?povs=p1,p2,quiet,__proto__,p1`)
  t.same(await unread.json(), {
    p1: { readCursor: cursors[1], unread: 1 },
    p2: { readCursor: null, unread: 2 },
    quiet: { readCursor: null, unread: 0 },
    __proto__: { readCursor: null, unread: 0 }
  }, 'one entry per PoV, a PoV named __proto__ included')
})

t.test('the server functions refuse malformed arguments with coded errors', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const api = server.app.povRealtime
  const [cursor] = await publish(server.app, 'p1', 1)
  await t.rejects(api.markRead('', 'p1', cursor!), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /userId/ })
  await t.rejects(api.markRead('u1', 'p 1', cursor!), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /povId/ })
  await t.rejects(api.reads('x'.repeat(129)), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /povId/ })
  await t.rejects(api.unreadCounts('u1', 'p1' as unknown as string[]), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /povIds/ })
  await t.rejects(api.unreadCounts('u1', Array.from({ length: 1001 }, (_, i) => `p${i}`)), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /1000/ })
  await t.rejects(api.unreadCounts('u1', ['p1', 'bad/pov']), { code: 'POV_REALTIME_INVALID_ARGUMENT', message: /povId/ })
  t.same(await api.unreadCounts('u1', Array.from({ length: 1000 }, (_, i) => `p${i}`)).then(Object.keys).then((keys) => keys.length), 1000,
    '1000 PoVs are allowed')
})

t.test('the server functions reject with POV_REALTIME_NOT_ENABLED while readReceipts is off', async (t) => {
  const server = await startServer(t)
  const [cursor] = await publish(server.app, 'p1', 1)
  const api = server.app.povRealtime
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['markRead', () => api.markRead('u1', 'p1', cursor!)],
    ['reads', () => api.reads('p1')],
    ['unreadCounts', () => api.unreadCounts('u1', ['p1'])]
  ]
  for (const [name, call] of calls) {
    await t.rejects(call(), { code: 'POV_REALTIME_NOT_ENABLED', message: new RegExp(`${name}.*readReceipts`) }, name)
  }
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' }, 'subscribed carries no read state')
})
