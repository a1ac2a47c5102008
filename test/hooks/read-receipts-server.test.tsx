/**
 * `useReadReceipts` and offline storage in jsdom against a real server of the plugin with `readReceipts` on: the mark
 * and count of `subscribed`, `markRead()` and its `read` echo, a second tab of the same user following, a reload that
 * shows the kept feed before the socket opens and then exactly what it missed, and a mark made while the network is
 * cut (a TCP proxy between the tab and the server) sent exactly once when it comes back.
 */
import 'global-jsdom/register'
import { cleanup, fireEvent } from '@testing-library/react'
import t from 'tap'
import { activity, sleep, startServer, waitFor } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { Receipts, feed, label, type View } from '../helpers/feature-views.js'
import { receivedOfType, sentOfType, until } from '../helpers/hook-fixtures.js'
import { MemoryStorage } from '../helpers/page-doubles.js'
import { openTab, openTabs } from '../helpers/server-tabs.js'

t.afterEach(() => cleanup())

const state = (view: View) => ({ unread: label(view, 'unread'), mark: label(view, 'mark'), reads: label(view, 'reads') })

/** Publishes activities `ids` on p1 from the server and returns their cursors by id. */
async function publish (app: Awaited<ReturnType<typeof startServer>>['app'], ...ids: string[]): Promise<Record<string, string>> {
  const cursors: Record<string, string> = {}
  for (const id of ids) cursors[id] = (await app.broadcastActivity(activity('p1', { id, userId: 'bo' }))).cursor
  return cursors
}

t.test('subscribed brings the mark and count; markRead() comes back as the read echo and clears the other tab', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  // Published before anyone watches: the history window holds them, so they count as unread without being shown.
  await publish(server.app, 'b1', 'b2', 'b3')
  const [anaTab, anaOtherTab, li] = openTabs(t, server.httpUrl, 'ana', 'ana', 'li')
  const tab1 = anaTab.show(<Receipts povId='p1' />)
  const tab2 = anaOtherTab.show(<Receipts povId='p1' />)
  const liView = li.show(<Receipts povId='p1' />)
  for (const view of [tab1, tab2, liView]) await until(t, () => state(view), { unread: '3', mark: 'none', reads: '' }, 'no mark, the window unread')
  t.same(sentOfType(anaTab.sockets, 'reads'), [{ type: 'reads', povId: 'p1' }], 'everyone\'s marks asked for on subscribing')

  const { a4 } = await publish(server.app, 'a4')
  for (const view of [tab1, tab2, liView]) await until(t, () => [feed(view), label(view, 'unread')], [['a4'], '4'], 'a live activity counts')

  fireEvent.click(tab1.getByText('Mark all read'))
  // At once: in the client's next batch (16 ms), before any answer of the server.
  await until(t, () => state(tab1), { unread: '0', mark: a4, reads: `ana@${a4}` }, 'shown at once in the tab that read', 1000)
  await until(t, () => receivedOfType(anaTab.sockets, 'read').map((frame) => frame.cursor), [a4], 'the server echoed the mark')
  t.same(sentOfType(anaTab.sockets, 'read'), [{ type: 'read', povId: 'p1', cursor: a4 }], 'one read sent, for the newest activity held')
  const echo = receivedOfType(anaTab.sockets, 'read')[0]!
  t.match(echo, { type: 'read', povId: 'p1', userId: 'ana', cursor: a4, readAt: String }, 'the echo carries the server\'s readAt')

  await until(t, () => state(tab2), { unread: '0', mark: a4, reads: `ana@${a4}` }, 'the other tab of ana: mark moved, badge cleared')
  t.same(sentOfType(anaOtherTab.sockets, 'read'), [], 'without sending anything itself')
  await until(t, () => state(liView), { unread: '4', mark: 'none', reads: `ana@${a4}` }, 'li sees ana\'s mark, keeps his own count')
  t.same(feed(liView), ['a4 seen by ana'], 'and that ana has seen a4')
  const marks = await server.app.povRealtime.reads('p1')
  t.same(marks.map(({ userId, cursor }) => ({ userId, cursor })), [{ userId: 'ana', cursor: a4 }], 'the server holds the mark')
  t.equal(marks[0]!.readAt, echo.readAt, 'with the time of the echo')

  const { a5 } = await publish(server.app, 'a5')
  for (const view of [tab1, tab2]) await until(t, () => label(view, 'unread'), '1', 'counting starts again after the mark')
  t.equal(anaOtherTab.client.markRead('p1', a4), false, 'a mark that would not move forward is not sent')
  fireEvent.click(tab2.getByText('Mark all read'))
  await until(t, () => state(tab1), { unread: '0', mark: a5, reads: `ana@${a5}` }, 'read in the second tab clears the first')
  await sleep(200)
  t.same(sentOfType(anaOtherTab.sockets, 'read'), [{ type: 'read', povId: 'p1', cursor: a5 }], 'the second tab sent only that one')
  t.equal(server.app.povRealtime.stats().rejected.INVALID_MESSAGE ?? 0, 0, 'no read was refused')
})

t.test('a busy PoV: marks moved together reach the tab as one reads frame, merged into the marks it had', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const { b1, b2 } = await publish(server.app, 'b1', 'b2')
  await server.app.povRealtime.markRead('cy', 'p1', b1!)
  await server.app.povRealtime.markRead('li', 'p1', b1!)
  await sleep(200) // their window has gone out (to nobody) before the tab subscribes
  const [anaTab] = openTabs(t, server.httpUrl, 'ana')
  const view = anaTab!.show(<Receipts povId='p1' />)
  await until(t, () => label(view, 'reads'), `cy@${b1} li@${b1}`, 'the answer to reads: the marks made before')

  // Two users' marks move in the same turn, so in one of the server's windows.
  await Promise.all([server.app.povRealtime.markRead('li', 'p1', b2!), server.app.povRealtime.markRead('bo', 'p1', b2!)])
  await until(t, () => label(view, 'reads'), `bo@${b2} cy@${b1} li@${b2}`, 'bo and li moved; cy, not in the batch, stays')
  const batches = receivedOfType(anaTab!.sockets, 'reads')
  t.equal(batches.length, 2, 'the answer, then one unsolicited reads')
  t.same((batches[1]!.reads as Array<{ userId: string }>).map((mark) => mark.userId).sort(), ['bo', 'li'])
  t.same(receivedOfType(anaTab!.sockets, 'read'), [], 'no read event: both marks came in the one frame')
})

t.test('a reload with persist shows the kept feed before the socket opens, then exactly what it missed: no gap, no duplicate', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const proxy = await startTcpProxy(t, server.port)
  const storage = new MemoryStorage()
  // The socket goes through the proxy (so the test can keep it from opening); the token route does not.
  const tabOf = (userId: string) => openTab(t, server.httpUrl, userId, { socketUrl: proxy.wsUrl(), persist: storage })

  const before = tabOf('ana')
  const first = before.show(<Receipts povId='p1' />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  const { a2 } = await publish(server.app, 'a1', 'a2')
  await until(t, () => feed(first), ['a1', 'a2'], 'the first load shows two')
  fireEvent.click(first.getByText('Mark all read'))
  await until(t, () => receivedOfType(before.sockets, 'read').length, 1, 'the mark is at the server')

  // The reload: the page is hidden (the client writes what it keeps), then it goes.
  before.page.hide()
  cleanup()
  before.client.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the old page gone')
  await publish(server.app, 'a3', 'a4')
  proxy.cut()

  const after = tabOf('ana')
  const second = after.show(<Receipts povId='p1' />)
  await until(t, () => feed(second), ['a1', 'a2'], 'the reloaded page shows the kept feed at once')
  t.same({ connection: label(second, 'connection'), mark: label(second, 'mark') }, { connection: 'disconnected', mark: a2 },
    'before any socket has opened, with the kept mark')

  const other = tabOf('li')
  const othersView = other.show(<Receipts povId='p1' />)
  await waitFor(() => other.fetches.calls.length === 1, 5000, 'li\'s token')
  await sleep(100)
  t.same([feed(othersView), label(othersView, 'mark')], [[], 'none'], 'another user on the same storage sees nothing of ana\'s')
  other.client.close()

  proxy.restore()
  // "seen by ana": everyone's marks are asked for again on subscribing; ana's own covers the two she read.
  await until(t, () => feed(second), ['a1 seen by ana', 'a2 seen by ana', 'a3', 'a4'], 'then the missed ones, in order')
  await until(t, () => label(second, 'unread'), '2', 'counted as unread after the kept mark')
  t.same(sentOfType(after.sockets, 'subscribe', 'p1')[0], { type: 'subscribe', povId: 'p1', since: a2 }, 'resumed after the kept cursor')
  t.same(receivedOfType(after.sockets, 'activity').map((frame) => (frame.data as { id: string }).id), ['a3', 'a4'],
    'only the missed activities came over the socket: nothing twice')
  t.match(receivedOfType(after.sockets, 'subscribed', 'p1'), [{ recovered: true, readCursor: a2, unread: 2 }], 'recovered, with the mark')
})

t.test('markRead while the network is cut shows at once and is sent exactly once after the reconnect', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const proxy = await startTcpProxy(t, server.port)
  const ana = openTab(t, proxy.httpUrl, 'ana')
  const li = openTab(t, server.httpUrl, 'li')
  const view = ana.show(<Receipts povId='p1' />)
  const liView = li.show(<Receipts povId='p1' />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'both subscribed')
  const { a2 } = await publish(server.app, 'a1', 'a2')
  await until(t, () => [feed(view), label(view, 'unread')], [['a1', 'a2'], '2'], 'ana has two unread')

  proxy.cut()
  await until(t, () => label(view, 'connection'), 'disconnected', 'offline')
  fireEvent.click(view.getByText('Mark all read'))
  await until(t, () => ({ unread: label(view, 'unread'), mark: label(view, 'mark') }), { unread: '0', mark: a2 }, 'shown at once while offline', 1000)
  t.equal(ana.client.markRead('p1'), false, 'marking again changes nothing')
  await sleep(300)
  t.same(sentOfType(ana.sockets, 'read'), [], 'nothing sent while offline')
  t.equal(label(liView, 'reads'), '', 'li knows of no mark yet')

  proxy.restore()
  await until(t, () => label(view, 'connection'), 'reconnected', 'back online')
  await until(t, () => label(liView, 'reads'), `ana@${a2}`, 'li sees the mark once ana is back')
  await sleep(500)
  t.same(sentOfType(ana.sockets, 'read'), [{ type: 'read', povId: 'p1', cursor: a2 }], 'sent exactly once')
  t.equal(receivedOfType(ana.sockets, 'read').length, 1, 'one echo')
  t.same({ unread: label(view, 'unread'), mark: label(view, 'mark') }, { unread: '0', mark: a2 }, 'still read')
  t.same((await server.app.povRealtime.unreadCounts('ana', ['p1'])).p1, { readCursor: a2, unread: 0 }, 'the server agrees')
})

t.test('a mark made offline survives a reload made offline and is sent once when the network comes back', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const proxy = await startTcpProxy(t, server.port)
  const storage = new MemoryStorage()
  const tabOf = () => openTab(t, server.httpUrl, 'ana', { socketUrl: proxy.wsUrl(), persist: storage })
  const before = tabOf()
  const first = before.show(<Receipts povId='p1' />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  const { a2 } = await publish(server.app, 'a1', 'a2')
  await until(t, () => feed(first), ['a1', 'a2'], 'two shown')

  proxy.cut()
  await until(t, () => label(first, 'connection'), 'disconnected', 'offline')
  fireEvent.click(first.getByText('Mark all read'))
  // A reload in the tunnel.
  before.page.hide()
  cleanup()
  before.client.close()

  const after = tabOf()
  const second = after.show(<Receipts povId='p1' />)
  await until(t, () => [feed(second), label(second, 'mark'), label(second, 'unread')], [['a1', 'a2'], a2, '0'], 'the reloaded page shows the mark')
  proxy.restore()
  await until(t, () => receivedOfType(after.sockets, 'read').length, 1, 'the echo came back')
  await sleep(500)
  t.same([...sentOfType(before.sockets, 'read'), ...sentOfType(after.sockets, 'read')], [{ type: 'read', povId: 'p1', cursor: a2 }],
    'one read in all, from the reloaded page')
  t.same((await server.app.povRealtime.reads('p1')).map((mark) => mark.cursor), [a2], 'the server has it')
})
