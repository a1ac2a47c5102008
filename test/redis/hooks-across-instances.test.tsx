/**
 * The React hooks in jsdom against two plugin instances sharing the Redis broker (the shared Redis, a key prefix of the
 * test's own), with `presence` and `readReceipts` on: users on different instances see each other, each other's
 * status and typing; a mark made on one instance reaches the user's tab on the other; a reload that lands on the other
 * instance resumes after the kept cursor.
 */
import 'global-jsdom/register'
import { cleanup, fireEvent } from '@testing-library/react'
import t from 'tap'
import type { PovRealtimeOptions } from '../../index.js'
import { NoteBox, Receipts, WhoIsHere, feed, label, members } from '../helpers/feature-views.js'
import { receivedOfType, sentOfType, until } from '../helpers/hook-fixtures.js'
import { MemoryStorage } from '../helpers/page-doubles.js'
import { openTab } from '../helpers/server-tabs.js'
import { testOnEachTarget, type RedisTarget } from '../helpers/redis-targets.js'
import { activity, startServer, waitFor, type Teardown, type TestServer } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

t.afterEach(() => cleanup())

const options: Partial<PovRealtimeOptions> = {
  presence: { info: (user) => ({ name: user.userId.toUpperCase() }) },
  readReceipts: true
}

async function twoInstances (t: Teardown, redis: RedisTarget): Promise<[TestServer, TestServer]> {
  const start = () => startServer(t, { ...options, broker: redis.createBroker() })
  return [await start(), await start()]
}

testOnEachTarget('users on two instances see each other, each other\'s idle status and typing, and the last tab leaving', async (t, redis) => {
  const [a, b] = await twoInstances(t, redis)
  const ana = openTab(t, a.httpUrl, 'ana', { typingInterval: 500 })
  const li = openTab(t, b.httpUrl, 'li')
  const anaView = ana.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  const liView = li.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  const both = ['ana:active:ANA', 'li:active:LI']
  await until(t, () => members(anaView), both, 'ana (instance A) sees li (instance B)')
  await until(t, () => members(liView), both, 'and li sees ana')

  li.page.hide()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'li idle, seen on the other instance')
  li.page.show()
  await until(t, () => members(anaView), both, 'active again')

  fireEvent.change(anaView.getByLabelText('note'), { target: { value: 'Hi' } })
  await until(t, () => label(liView, 'typing'), 'ana typing…', 'typing crosses instances')
  await until(t, () => label(liView, 'typing'), '', 'and stops after the pause', 5000)
  t.same(receivedOfType(ana.sockets, 'typing'), [], 'never echoed to the typist')

  li.client.close()
  await until(t, () => members(anaView), ['ana:active:ANA'], 'li left everywhere with his last tab')
})

testOnEachTarget('a mark made on one instance reaches the user\'s other tab and the other users on the other instance', async (t, redis) => {
  const [a, b] = await twoInstances(t, redis)
  const anaOnA = openTab(t, a.httpUrl, 'ana')
  const anaOnB = openTab(t, b.httpUrl, 'ana')
  const liOnB = openTab(t, b.httpUrl, 'li')
  const tab1 = anaOnA.show(<Receipts povId='p1' />)
  const tab2 = anaOnB.show(<Receipts povId='p1' />)
  const liView = liOnB.show(<Receipts povId='p1' />)
  await waitFor(() => a.app.povRealtime.stats().subscriptions === 1 && b.app.povRealtime.stats().subscriptions === 2, 5000, 'all subscribed')
  for (const view of [tab1, tab2, liView]) await until(t, () => label(view, 'unread'), '0', 'nothing unread yet')

  const { cursor: c1 } = await a.app.broadcastActivity(activity('p1', { id: 'a1', userId: 'bo' }))
  const { cursor: c2 } = await b.app.broadcastActivity(activity('p1', { id: 'a2', userId: 'bo' }))
  for (const view of [tab1, tab2, liView]) {
    await until(t, () => [feed(view), label(view, 'unread')], [['a1', 'a2'], '2'], 'both activities, from either instance, unread')
  }
  fireEvent.click(tab1.getByText('Mark all read'))
  await until(t, () => [label(tab2, 'mark'), label(tab2, 'unread')], [c2, '0'], 'ana\'s tab on the other instance follows')
  await until(t, () => label(liView, 'reads'), `ana@${c2}`, 'li, on the other instance, sees the mark')
  t.same(feed(liView), ['a1 seen by ana', 'a2 seen by ana'], 'and what ana has seen')
  t.same(sentOfType(anaOnA.sockets, 'read'), [{ type: 'read', povId: 'p1', cursor: c2 }], 'one read sent')
  t.same((await b.app.povRealtime.unreadCounts('ana', ['p1'])).p1, { readCursor: c2, unread: 0 }, 'instance B agrees')
  t.equal(anaOnB.client.markRead('p1', c1), false, 'an older mark is not sent from the other tab')
})

testOnEachTarget('a reload that lands on the other instance resumes after the kept cursor: no gap, no duplicate', async (t, redis) => {
  const [a, b] = await twoInstances(t, redis)
  const proxy = await startTcpProxy(t, a.port)
  const storage = new MemoryStorage()
  const tabOf = () => openTab(t, a.httpUrl, 'ana', { socketUrl: proxy.wsUrl(), persist: storage })

  const before = tabOf()
  const first = before.show(<Receipts povId='p1' />)
  // Confirmed, not only registered: with the Redis broker, delivery on A begins once A's feed of p1 has started,
  // which `subscribed` waits for (an activity published before it is the resume's to bring).
  await waitFor(() => receivedOfType(before.sockets, 'subscribed', 'p1').length === 1, 5000, 'subscribed on A')
  for (const id of ['a1', 'a2']) await a.app.broadcastActivity(activity('p1', { id }))
  await until(t, () => feed(first), ['a1', 'a2'], 'two shown')
  before.page.hide()
  cleanup()
  before.client.close()

  await b.app.broadcastActivity(activity('p1', { id: 'a3' }))
  proxy.retarget(b.port)
  const after = tabOf()
  const second = after.show(<Receipts povId='p1' />)
  await until(t, () => feed(second), ['a1', 'a2', 'a3'], 'the kept two, then the one published meanwhile')
  await waitFor(() => b.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed on B')
  t.same(receivedOfType(after.sockets, 'activity').map((frame) => (frame.data as { id: string }).id), ['a3'], 'only a3 came over the socket')
  t.match(receivedOfType(after.sockets, 'subscribed'), [{ povId: 'p1', recovered: true }], 'instance B filled the gap from Redis')
})
