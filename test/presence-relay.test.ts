/**
 * The plugin side of presence across instances (lib/broker.ts, `PresenceRelay` and `PresenceSink`): two real plugin
 * instances in this process share presence through an in-memory relay (test/helpers/presence-bus.ts), so that what
 * the plugin announces, and what it makes of other instances' members and typing, is tested without Redis.
 */
import t, { type Test } from 'tap'
import type { Message, TestClient } from './helpers/client.js'
import { diffs, member, membersSeen, settle } from './helpers/presence.js'
import { PresenceBus } from './helpers/presence-bus.js'
import { sleep, startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'
import { connectAs } from './helpers/members.js'

async function twoInstances (t: Test, typingTimeout = 5000) {
  const bus = new PresenceBus()
  const a = await startServer(t, { presence: { typingTimeout }, broker: bus.broker('A') })
  const b = await startServer(t, { presence: { typingTimeout }, broker: bus.broker('B') })
  return { bus, a, b }
}

/** Subscribes and waits until the relay has had time to deliver (it delivers on a later turn). */
async function subscribed (client: TestClient, povId = 'p1'): Promise<void> {
  await client.subscribe(povId)
  await client.next('presence')
  await sleep(5)
}

const typingSeen = (client: TestClient) => client.messages.filter((m) => m.type === 'typing').map((m) => [m.userId, m.typing])
const typingEvent = (userId: string, typing: boolean) => (m: Message) => m.type === 'typing' && m.userId === userId && m.typing === typing

t.test('members on two instances see each other join and leave; a late subscriber\'s snapshot has both', async (t) => {
  const { a, b } = await twoInstances(t)
  const u1 = await connectAs(a, 'u1')
  await subscribed(u1)
  const u2 = await connectAs(b, 'u2')
  await subscribed(u2)
  t.same(membersSeen(u2, 'p1'), [member('u1'), member('u2')], 'the snapshot on B has the member on A')
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [member('u2')], leaves: [] })
  u2.close()
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u2'] })
  t.same(await a.app.povRealtime.presence('p1'), [member('u1')])
})

t.test('one user with tabs on two instances is one member, active while any tab is, gone with the last', async (t) => {
  const { a, b } = await twoInstances(t)
  const watcher = await connectAs(a, 'w')
  await subscribed(watcher)
  const tabOnA = await connectAs(a, 'u1')
  tabOnA.send({ type: 'status', status: 'idle' })
  await subscribed(tabOnA)
  const tabOnB = await connectAs(b, 'u1')
  await subscribed(tabOnB)
  await settle(watcher)
  t.same(membersSeen(watcher, 'p1'), [member('u1'), member('w')], 'active: the tab on B is')
  t.same(membersSeen(tabOnB, 'p1'), [member('u1'), member('w')], 'B shows one u1 too')
  const seen = diffs(watcher, 'p1').length

  tabOnB.send({ type: 'status', status: 'idle' })
  await settle(watcher)
  t.same(diffs(watcher, 'p1').slice(seen).map((m) => m.joins), [[member('u1', 'idle')]], 'idle once every tab everywhere is')
  tabOnB.close()
  await settle(watcher)
  t.equal(diffs(watcher, 'p1').length, seen + 1, 'the tab on B leaving is not the member leaving')
  tabOnA.close()
  await settle(watcher)
  t.same(diffs(watcher, 'p1').at(-1), { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u1'] }, 'the last tab leaves')
})

t.test('an instance announces only its own changes of a member: joins, member status changes, leaves', async (t) => {
  const { bus, a } = await twoInstances(t)
  const tab1 = await connectAs(a, 'u1')
  const tab2 = await connectAs(a, 'u1')
  await subscribed(tab1)
  await subscribed(tab2)
  tab1.send({ type: 'status', status: 'idle' })
  await settle(tab1)
  tab2.send({ type: 'status', status: 'idle' })
  await settle(tab2)
  tab1.close()
  await closed(tab1)
  tab2.close()
  await waitFor(() => a.app.povRealtime.stats().connections === 0)
  t.same(bus.calls.filter((c) => c.call === 'announce').map((c) => c.call === 'announce' && [c.userId, c.state?.status ?? null]), [
    ['u1', 'active'], ['u1', 'idle'], ['u1', null]
  ], 'a second tab, one tab of two going idle and one of two closing announce nothing')
})

t.test('typing crosses instances, never to the typist\'s own tabs on the other instance', async (t) => {
  const { a, b } = await twoInstances(t)
  const typist = await connectAs(a, 'u1')
  await subscribed(typist)
  const ownTabOnB = await connectAs(b, 'u1')
  await subscribed(ownTabOnB)
  const reader = await connectAs(b, 'u2')
  await subscribed(reader)
  typist.send({ type: 'typing', povId: 'p1', typing: true })
  t.same(await reader.next('typing'), { type: 'typing', povId: 'p1', userId: 'u1', typing: true })
  typist.send({ type: 'typing', povId: 'p1', typing: false })
  await reader.next(typingEvent('u1', false))
  await settle(ownTabOnB, typist)
  t.same(typingSeen(ownTabOnB), [], 'the typist\'s tab on B hears nothing')
  t.same(typingSeen(typist), [], 'nor does the typing tab')
})

t.test('a user typing on and on is refreshed across instances; if its instance goes silent, the typing ends by itself', async (t) => {
  const timeout = 300
  const { bus, a, b } = await twoInstances(t, timeout)
  const typist = await connectAs(b, 'u1')
  await subscribed(typist)
  const reader = await connectAs(a, 'u2')
  await subscribed(reader)
  const until = Date.now() + 4 * timeout
  while (Date.now() < until) {
    typist.send({ type: 'typing', povId: 'p1', typing: true })
    await sleep(timeout / 4)
  }
  t.same(typingSeen(reader), [['u1', true]], `typing for ${4 * timeout} ms: one start, no stop on the other instance`)
  const refreshes = bus.calls.filter((c) => c.call === 'typing').length
  t.ok(refreshes >= 4 && refreshes <= 10, `the start was announced again every half timeout or so (${refreshes} calls)`)

  bus.silence('B')
  const silent = Date.now()
  while (!typingSeen(reader).some(([, typing]) => typing === false)) {
    typist.send({ type: 'typing', povId: 'p1', typing: true })
    await sleep(timeout / 4)
    if (Date.now() - silent > 10 * timeout) break
  }
  const ended = Date.now() - silent
  t.same(typingSeen(reader), [['u1', true], ['u1', false]], 'the typing of a silent instance ends')
  t.ok(ended >= timeout && ended <= 3 * timeout + 200, `within twice the timeout of its last refresh (${ended} ms)`)
})

t.test('when an instance is gone, its members leave the others and their typing ends', async (t) => {
  const { bus, a, b } = await twoInstances(t, 60_000)
  const reader = await connectAs(a, 'u2')
  await subscribed(reader)
  const typist = await connectAs(b, 'u1')
  await subscribed(typist)
  typist.send({ type: 'typing', povId: 'p1', typing: true })
  // The join's diff and the typing event travel separately (diffs are coalesced on a timer): either may come first.
  await reader.next(typingEvent('u1', true))
  await waitFor(() => diffs(reader, 'p1').length === 1, 2000, 'the join of u1')
  t.same(diffs(reader, 'p1'), [{ type: 'presence_diff', povId: 'p1', joins: [member('u1')], leaves: [] }])
  bus.remove('B')
  await reader.next(typingEvent('u1', false))
  await waitFor(() => diffs(reader, 'p1').length === 2, 2000, 'the leave of u1')
  t.same(diffs(reader, 'p1')[1], { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u1'] })
  t.same(await a.app.povRealtime.presence('p1'), [member('u2')])
})

t.test('presence(povId) lists other instances\' members of a PoV this one does not watch; unwatching drops them', async (t) => {
  const { a, b } = await twoInstances(t)
  const tabs = await Promise.all([connectAs(b, 'u1'), connectAs(b, 'u1'), connectAs(b, 'u2')])
  for (const tab of tabs) await subscribed(tab, 'p9')
  tabs[2]!.send({ type: 'status', status: 'idle' })
  await settle(tabs[2]!)
  t.same(await a.app.povRealtime.presence('p9'), [member('u1'), member('u2', 'idle')], 'from the relay')
  t.equal(a.app.povRealtime.stats().presenceMembers, 0, 'A holds none of them')

  const visitor = await connectAs(a, 'u3')
  await subscribed(visitor, 'p9')
  t.equal(a.app.povRealtime.stats().presenceMembers, 3, 'while A watches p9 it holds every member')
  t.same(membersSeen(visitor, 'p9'), [member('u1'), member('u2', 'idle'), member('u3')])
  visitor.close()
  await waitFor(() => a.app.povRealtime.stats().connections === 0)
  t.match(a.app.povRealtime.stats(), { povs: 0, presenceMembers: 0 }, 'A dropped B\'s members of p9 with the PoV')
  t.same(await a.app.povRealtime.presence('p9'), [member('u1'), member('u2', 'idle')])
})
