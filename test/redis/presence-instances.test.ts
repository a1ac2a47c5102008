/**
 * Presence across real plugin instances sharing a real Redis (PROTOCOL.md, "Presence, activity status and typing"):
 * clients on different instances see each other join, leave, change status and type; a user with tabs on two
 * instances is one member; typing never echoes to the typist's own tabs and stops by itself; `presence(povId)`
 * answers for a PoV the instance does not watch.
 */
import type { Message, TestClient } from '../helpers/client.js'
import { member, membersSeen, presenceMessages, sortMembers } from '../helpers/presence.js'
import { startRedisInstances } from '../helpers/redis-instances.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { sleep, waitFor, type TestServer } from '../helpers/server.js'
import type { Member } from '../../types/messages.js'
import { closed } from '../helpers/socket-waits.js'
import { connectAs } from '../helpers/members.js'

/** How long a change may take to cross instances on a loaded machine before a test gives up on it. */
const CROSSING = 5000

/** Connects `userId` to `server` and subscribes them to `povId`; resolves once their snapshot is in. */
async function memberOn (server: TestServer, userId: string, povId = 'p1'): Promise<TestClient> {
  const client = await connectAs(server, userId)
  await client.subscribe(povId)
  await client.next((m) => m.type === 'presence' && m.povId === povId)
  return client
}

/** Waits until `client` sees exactly `members` on `povId`. */
async function untilSeen (client: TestClient, members: Member[], povId = 'p1'): Promise<void> {
  const wanted = JSON.stringify(members)
  await waitFor(() => JSON.stringify(membersSeen(client, povId)) === wanted, CROSSING,
    `the members ${wanted}; seen ${JSON.stringify(membersSeen(client, povId))}`)
}

/** What the `presence_diff` messages `client` got on `povId` said of `userId`: its state as joined, or `left`. */
function changesOf (client: TestClient, userId: string, povId = 'p1'): Array<string> {
  const changes: string[] = []
  for (const message of presenceMessages(client, povId)) {
    if (message.type !== 'presence_diff') continue
    if ((message.leaves as string[]).includes(userId)) changes.push('left')
    const joined = (message.joins as Member[]).find((m) => m.userId === userId)
    if (joined) changes.push(joined.status)
  }
  return changes
}

let barriers = 0
/**
 * Waits until every presence change `from` has made on `povId` so far has reached `watchers`: a fresh user joins there
 * and leaves, and each watcher sees both. One instance's changes of a PoV reach the others in order, so anything
 * made before the barrier arrived before it (or in the same diff).
 */
async function barrier (from: TestServer, povId: string, ...watchers: TestClient[]): Promise<void> {
  const userId = `barrier-${++barriers}`
  const seen = (watcher: TestClient) => membersSeen(watcher, povId).some((m) => m.userId === userId)
  const client = await memberOn(from, userId, povId)
  for (const watcher of watchers) await waitFor(() => seen(watcher), CROSSING, `${userId} to reach a watcher`)
  client.terminate()
  for (const watcher of watchers) await waitFor(() => !seen(watcher), CROSSING, `${userId} to leave a watcher`)
}

const typingSeen = (client: TestClient, povId = 'p1') =>
  client.messages.filter((m) => m.type === 'typing' && m.povId === povId).map((m) => [m.userId, m.typing])
const typingEvent = (userId: string, typing: boolean) => (m: Message) => m.type === 'typing' && m.userId === userId && m.typing === typing

testOnEachTarget('joins, status changes and leaves on one instance reach members on the other, both ways', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: true })
  const u1 = await memberOn(a!, 'u1')
  t.same(membersSeen(u1, 'p1'), [member('u1')])
  const u2 = await memberOn(b!, 'u2')
  t.same(membersSeen(u2, 'p1'), [member('u1'), member('u2')], 'the snapshot on B already has the member on A')
  t.same(await u1.next('presence_diff', CROSSING), { type: 'presence_diff', povId: 'p1', joins: [member('u2')], leaves: [] },
    'A hears of the join on B')

  u2.send({ type: 'status', status: 'idle' })
  t.same(await u1.next('presence_diff', CROSSING), { type: 'presence_diff', povId: 'p1', joins: [member('u2', 'idle')], leaves: [] },
    'a status change on B, as a join with the new status')
  u1.send({ type: 'status', status: 'idle' })
  t.same(await u2.next((m) => m.type === 'presence_diff' && JSON.stringify(m).includes('"u1"'), CROSSING),
    { type: 'presence_diff', povId: 'p1', joins: [member('u1', 'idle')], leaves: [] },
    'and one on A reaches B')
  u1.send({ type: 'status', status: 'active' })
  await untilSeen(u2, [member('u1'), member('u2', 'idle')])

  const u3 = await memberOn(b!, 'u3')
  await untilSeen(u1, [member('u1'), member('u2', 'idle'), member('u3')])
  await untilSeen(u2, [member('u1'), member('u2', 'idle'), member('u3')])
  await u2.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  const heard = presenceMessages(u2, 'p1').length
  await untilSeen(u1, [member('u1'), member('u3')])
  t.same(changesOf(u1, 'u2').at(-1), 'left', 'an unsubscribe on B is a leave on A')
  u1.terminate()
  await untilSeen(u3, [member('u3')])
  t.same(changesOf(u3, 'u1'), ['left'], 'a disconnect on A is a leave on B')
  t.same(await a!.app.povRealtime.presence('p1'), [member('u3')], 'A, which no longer watches p1, lists B\'s member')
  t.same(await b!.app.povRealtime.presence('p1'), [member('u3')])
  await barrier(a!, 'p1', u3)
  t.equal(presenceMessages(u2, 'p1').length, heard, 'after unsubscribing, u2 heard nothing more of p1')
})

testOnEachTarget('one user with a tab on A and a tab on B is one member: closing one tab does not leave, the last one does', async (t, redis) => {
  const [a, b, c] = await startRedisInstances(t, redis, 3, { presence: true })
  const onA = await memberOn(a!, 'w-a')
  const onC = await memberOn(c!, 'w-c')
  await untilSeen(onA, [member('w-a'), member('w-c')])

  const tabOnA = await connectAs(a!, 'u1')
  tabOnA.send({ type: 'status', status: 'idle' })
  await tabOnA.subscribe('p1')
  // Both watchers shown the idle member first: changes inside one diff window are coalesced into one.
  await untilSeen(onA, [member('u1', 'idle'), member('w-a'), member('w-c')])
  await untilSeen(onC, [member('u1', 'idle'), member('w-a'), member('w-c')])
  const tabOnB = await memberOn(b!, 'u1')
  t.same(membersSeen(tabOnB, 'p1'), [member('u1'), member('w-a'), member('w-c')],
    'the second tab\'s snapshot has the user once, active: that tab is')
  await untilSeen(onC, [member('u1'), member('w-a'), member('w-c')])
  await untilSeen(onA, [member('u1'), member('w-a'), member('w-c')])
  t.same(changesOf(onC, 'u1'), ['idle', 'active'], 'C: joined idle, then active because a tab is; never twice')
  t.same(changesOf(onA, 'u1'), ['idle', 'active'], 'A, which holds the idle tab, the same')
  t.same(changesOf(tabOnA, 'u1'), ['active'], 'the first tab hears only the member turning active')

  tabOnB.send({ type: 'status', status: 'idle' })
  for (const watcher of [onA, onC]) await untilSeen(watcher, [member('u1', 'idle'), member('w-a'), member('w-c')])
  tabOnB.send({ type: 'status', status: 'active' })
  for (const watcher of [onA, onC]) await untilSeen(watcher, [member('u1'), member('w-a'), member('w-c')])

  tabOnA.close()
  await closed(tabOnA)
  await barrier(a!, 'p1', onA, onC, tabOnB)
  t.same(changesOf(onC, 'u1'), ['idle', 'active', 'idle', 'active'], 'closing the tab on A does not leave, seen from C')
  t.same(changesOf(onA, 'u1'), ['idle', 'active', 'idle', 'active'], 'nor from A, where that tab was')
  t.same(membersSeen(onA, 'p1'), [member('u1'), member('w-a'), member('w-c')])
  t.same(sortMembers(await a!.app.povRealtime.presence('p1')), [member('u1'), member('w-a'), member('w-c')], 'presence(p1) on A agrees')

  tabOnB.close()
  await untilSeen(onA, [member('w-a'), member('w-c')])
  await untilSeen(onC, [member('w-a'), member('w-c')])
  t.same(changesOf(onC, 'u1').at(-1), 'left', 'the last tab leaves')
  t.same(sortMembers(await c!.app.povRealtime.presence('p1')), [member('w-a'), member('w-c')])
})

testOnEachTarget('typing crosses instances, to the other members only: never to the typist\'s own tabs on either instance', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: { typingTimeout: 60_000 } })
  const typist = await memberOn(a!, 'u1')
  const ownTabOnA = await memberOn(a!, 'u1')
  const ownTabOnB = await memberOn(b!, 'u1')
  const readerOnB = await memberOn(b!, 'u2')
  const readerOnA = await memberOn(a!, 'u3')
  await untilSeen(readerOnB, [member('u1'), member('u2'), member('u3')])

  typist.send({ type: 'typing', povId: 'p1', typing: true })
  t.same(await readerOnB.next('typing', CROSSING), { type: 'typing', povId: 'p1', userId: 'u1', typing: true }, 'to B')
  t.same(await readerOnA.next('typing', CROSSING), { type: 'typing', povId: 'p1', userId: 'u1', typing: true }, 'and on A')
  typist.send({ type: 'typing', povId: 'p1', typing: false })
  t.same(await readerOnB.next('typing', CROSSING), { type: 'typing', povId: 'p1', userId: 'u1', typing: false },
    'a client\'s typing: false crosses at once, long before the timeout')

  // The typist's tab on B starts typing too: the typist's tab on A must not hear it either.
  ownTabOnB.send({ type: 'typing', povId: 'p1', typing: true })
  await readerOnA.next(typingEvent('u1', true), CROSSING)
  ownTabOnB.send({ type: 'typing', povId: 'p1', typing: false })
  await readerOnA.next(typingEvent('u1', false), CROSSING)
  await barrier(a!, 'p1', ownTabOnB, readerOnB)
  await barrier(b!, 'p1', typist, ownTabOnA, readerOnA)
  t.same(typingSeen(readerOnB), [['u1', true], ['u1', false], ['u1', true], ['u1', false]])
  for (const [what, tab] of Object.entries({ 'the typing tab': typist, 'its tab on A': ownTabOnA, 'its tab on B': ownTabOnB })) {
    t.same(typingSeen(tab), [], `${what} heard nothing of the user's own typing`)
  }
})

testOnEachTarget('typing stops by itself across instances: typingTimeout after the last typing: true, not while it goes on', async (t, redis) => {
  const timeout = 400
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: { typingTimeout: timeout } })
  const typist = await memberOn(a!, 'u1')
  const reader = await memberOn(b!, 'u2')
  await untilSeen(typist, [member('u1'), member('u2')])

  typist.send({ type: 'typing', povId: 'p1', typing: true })
  await reader.next(typingEvent('u1', true), CROSSING)
  const started = Date.now()
  await reader.next(typingEvent('u1', false), timeout * 5)
  const stoppedAfter = Date.now() - started
  t.comment(`a single typing: true stopped by itself on the other instance after ${stoppedAfter} ms (typingTimeout ${timeout} ms)`)
  t.ok(stoppedAfter >= timeout - 100 && stoppedAfter <= timeout + 600, `about typingTimeout after the start (${stoppedAfter} ms)`)

  const until = Date.now() + 5 * timeout
  while (Date.now() < until) {
    typist.send({ type: 'typing', povId: 'p1', typing: true })
    await sleep(timeout / 4)
  }
  t.same(typingSeen(reader), [['u1', true], ['u1', false], ['u1', true]],
    `typing on for ${5 * timeout} ms: one start on the other instance, no stop while it goes on`)
  await reader.next(typingEvent('u1', false), timeout * 5)
  t.same(typingSeen(reader), [['u1', true], ['u1', false], ['u1', true], ['u1', false]], 'then it stops by itself')
})

testOnEachTarget('a member who subscribes on B while a user on A keeps typing is told at the typist\'s next refresh', async (t, redis) => {
  const timeout = 400
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: { typingTimeout: timeout } })
  const typist = await memberOn(a!, 'u1')
  const state = { typing: true }
  const typing = (async () => {
    while (state.typing) {
      typist.send({ type: 'typing', povId: 'p1', typing: true })
      await sleep(timeout / 4)
    }
  })()
  await sleep(timeout)
  const subscribing = Date.now()
  const late = await memberOn(b!, 'u2')
  t.same(typingSeen(late), [], 'typing is not stored: B, which did not watch p1, cannot know of it yet')
  await late.next(typingEvent('u1', true), timeout * 3)
  const toldAfter = Date.now() - subscribing
  state.typing = false
  await typing
  t.comment(`a late subscriber on another instance learnt of ongoing typing ${toldAfter} ms after subscribing (typingTimeout ${timeout} ms)`)
  t.ok(toldAfter <= timeout + 200, `within half the timeout plus a keystroke or so (${toldAfter} ms)`)
  await late.next(typingEvent('u1', false), timeout * 3)
})

testOnEachTarget('presence(povId) on an instance that does not watch the PoV lists the members of the others, one entry per user', async (t, redis) => {
  const [a, b, c] = await startRedisInstances(t, redis, 3, { presence: { info: (user) => ({ name: user.userId.toUpperCase() }) } })
  const named = (userId: string, status: 'active' | 'idle' = 'active') => member(userId, status, { name: userId.toUpperCase() })
  t.same(await a!.app.povRealtime.presence('p9'), [], 'nobody anywhere')
  const tabs = [await memberOn(b!, 'u1', 'p9'), await memberOn(b!, 'u1', 'p9'), await memberOn(c!, 'u1', 'p9')]
  const idler = await connectAs(c!, 'u2')
  idler.send({ type: 'status', status: 'idle' })
  await idler.subscribe('p9')
  await untilSeen(tabs[0]!, [named('u1'), named('u2', 'idle')], 'p9')

  t.same(sortMembers(await a!.app.povRealtime.presence('p9')), [named('u1'), named('u2', 'idle')],
    'u1, on two instances with three tabs, is listed once; info as the other instances computed it')
  t.match(a!.app.povRealtime.stats(), { povs: 0, presenceMembers: 0 }, 'A watches nothing and holds no member')

  tabs[2]!.send({ type: 'status', status: 'idle' })
  tabs[0]!.send({ type: 'status', status: 'idle' })
  await barrier(b!, 'p9', idler)
  await barrier(c!, 'p9', tabs[1]!)
  t.same(sortMembers(await a!.app.povRealtime.presence('p9')), [named('u1'), named('u2', 'idle')], 'active while any tab anywhere is')
  tabs[1]!.send({ type: 'status', status: 'idle' })
  await untilSeen(idler, [named('u1', 'idle'), named('u2', 'idle')], 'p9')
  t.same(sortMembers(await a!.app.povRealtime.presence('p9')), [named('u1', 'idle'), named('u2', 'idle')], 'idle once every tab is')

  for (const tab of [...tabs, idler]) tab.close()
  await waitFor(() => b!.app.povRealtime.stats().connections === 0 && c!.app.povRealtime.stats().connections === 0, CROSSING)
  let members: Member[] = [named('someone')]
  await waitFor(() => {
    a!.app.povRealtime.presence('p9').then((now) => { members = now }, () => {})
    return members.length === 0
  }, CROSSING, 'the members to be gone')
  t.same(members, [], 'gone once their last tabs are')
})
