/**
 * `usePresence`, `useTyping` and the idle status in jsdom against a real server of the plugin with `presence` on:
 * two users (each a tab of their own, see `server-tabs.tsx`) on one PoV see each other, see the other go idle when
 * their page is hidden, see the other type and stop.
 */
import 'global-jsdom/register'
import { cleanup, fireEvent } from '@testing-library/react'
import t from 'tap'
import { sleep, startServer, waitFor } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { NoteBox, WhoIsHere, label, members } from '../helpers/feature-views.js'
import { receivedOfType, sentOfType, until } from '../helpers/hook-fixtures.js'
import { openTab, openTabs } from '../helpers/server-tabs.js'

t.afterEach(() => cleanup())

// The display name as the app's `info` gives it: never the e-mail, which the server knows (it is in the token).
const presence = { info: (user: { userId: string }) => ({ name: user.userId.toUpperCase() }) }

t.test('two users on one PoV see each other, with the name info gives and never an e-mail; the last tab to go leaves', async (t) => {
  const server = await startServer(t, { presence })
  const [ana, li] = openTabs(t, server.httpUrl, 'ana', 'li')
  const anaView = ana.show(<WhoIsHere povId='p1' />)
  const liView = li.show(<WhoIsHere povId='p1' />)
  const both = ['ana:active:ANA', 'li:active:LI']
  await until(t, () => members(anaView), both, 'ana sees both, herself included')
  await until(t, () => members(liView), both, 'li sees both')
  const onServer = await server.app.povRealtime.presence('p1')
  t.same([...onServer].sort((a, b) => a.userId.localeCompare(b.userId)), [
    { userId: 'ana', status: 'active', info: { name: 'ANA' } },
    { userId: 'li', status: 'active', info: { name: 'LI' } }
  ], 'the server has the same two members')
  const wire = JSON.stringify([...ana.sockets.received, ...li.sockets.received])
  t.notMatch(wire, /@example\.com/, 'no e-mail on either socket')

  // A second tab of li's: still one member, and nobody hears of a join.
  const liAgain = openTab(t, server.httpUrl, 'li')
  const liAgainView = liAgain.show(<WhoIsHere povId='p1' />)
  await until(t, () => members(liAgainView), both, "li's second tab sees the same two")
  const diffsBefore = receivedOfType(ana.sockets, 'presence_diff').length
  liAgain.client.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 2, 5000, "li's second tab to close")
  li.client.close()
  await until(t, () => members(anaView), ['ana:active:ANA'], 'li left with the last tab')
  t.same(receivedOfType(ana.sockets, 'presence_diff').slice(diffsBefore), [{ type: 'presence_diff', povId: 'p1', joins: [], leaves: ['li'] }],
    'one diff for li: a leave when the last tab went, nothing for the second tab')
})

t.test('a hidden page shows as idle to the other user, and active again when it shows; only changes go on the wire', async (t) => {
  const server = await startServer(t, { presence })
  const [ana, li] = openTabs(t, server.httpUrl, 'ana', 'li')
  const anaView = ana.show(<WhoIsHere povId='p1' />)
  li.show(<WhoIsHere povId='p1' />)
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'both active at first')

  li.page.hide()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'ana sees li idle')
  li.page.input('pointermove') // input on a hidden page (a pointer passing over it) is not the user coming back
  li.page.show()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'and active again')
  for (const type of ['keydown', 'pointermove', 'scroll']) li.page.input(type)
  await until(t, () => sentOfType(li.sockets, 'status'), [
    { type: 'status', status: 'idle' }, { type: 'status', status: 'active' }
  ], 'li sent two statuses, one per change')
  t.same(sentOfType(ana.sockets, 'status'), [], 'ana, always active, sent none')
})

t.test('a member with two tabs is active while either is, and idle once both are hidden', async (t) => {
  const server = await startServer(t, { presence })
  const [ana, li, liOtherTab] = openTabs(t, server.httpUrl, 'ana', 'li', 'li')
  const anaView = ana.show(<WhoIsHere povId='p1' />)
  li.show(<WhoIsHere povId='p1' />)
  liOtherTab.show(<WhoIsHere povId='p1' />)
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'li once, active')
  li.page.hide()
  await until(t, () => sentOfType(li.sockets, 'status').length, 1, 'the hidden tab reported idle')
  await sleep(300)
  t.same(members(anaView), ['ana:active:ANA', 'li:active:LI'], 'li is still active: the other tab is')
  liOtherTab.page.hide()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'idle once both are hidden')
  li.page.show()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'active again with one tab shown')
})

t.test('an idle page that reconnects says so before subscribing again: the others never see it active meanwhile', async (t) => {
  const server = await startServer(t, { presence })
  const proxy = await startTcpProxy(t, server.port)
  const ana = openTab(t, server.httpUrl, 'ana')
  const li = openTab(t, proxy.httpUrl, 'li')
  const anaView = ana.show(<WhoIsHere povId='p1' />)
  const liView = li.show(<WhoIsHere povId='p1' />)
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'both active at first')
  li.page.hide()
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'li idle')
  const seen = new Set<string>()
  const diffsBefore = receivedOfType(ana.sockets, 'presence_diff').length

  proxy.cut()
  await until(t, () => members(anaView), ['ana:active:ANA'], 'li left when his connection dropped')
  proxy.restore()
  const watch = setInterval(() => { for (const shown of members(anaView)) seen.add(shown) }, 5)
  await until(t, () => members(liView), ['ana:active:ANA', 'li:idle:LI'], 'li back, sees himself idle')
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'ana sees li back, idle')
  await sleep(300)
  clearInterval(watch)
  t.notOk(seen.has('li:active:LI'), 'ana never saw li active on the way')
  const joins = receivedOfType(ana.sockets, 'presence_diff').slice(diffsBefore)
    .flatMap((diff) => diff.joins as Array<{ userId: string, status: string }>)
  t.same(joins.map(({ userId, status }) => `${userId}:${status}`), ['li:idle'], 'li joined once, idle')
  t.same(sentOfType(li.sockets, 'status'), [{ type: 'status', status: 'idle' }, { type: 'status', status: 'idle' }],
    'idle said once on each socket')
  t.same(li.sockets.sent.slice(-2).map((frame) => frame.type), ['status', 'subscribe'], 'on the new one before subscribing')
})

t.test('an idle timeout without input makes the member idle to the others, and the next input active', async (t) => {
  const server = await startServer(t, { presence })
  const ana = openTab(t, server.httpUrl, 'ana')
  const li = openTab(t, server.httpUrl, 'li', { idleTimeout: 400 })
  const anaView = ana.show(<WhoIsHere povId='p1' />)
  li.show(<WhoIsHere povId='p1' />)
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:idle:LI'], 'li idle after 400 ms without input')
  li.page.input('keydown')
  await until(t, () => members(anaView), ['ana:active:ANA', 'li:active:LI'], 'active on the next key')
})

t.test('typing in one tab shows under the other user\'s note box, never the typist\'s own, and stops after the pause', async (t) => {
  const server = await startServer(t, { presence })
  // A short pause, so that the test does not wait out the default 3 s.
  const ana = openTab(t, server.httpUrl, 'ana', { typingInterval: 500 })
  const li = openTab(t, server.httpUrl, 'li')
  const anaOtherTab = openTab(t, server.httpUrl, 'ana')
  const anaView = ana.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  const liView = li.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  const anaOtherView = anaOtherTab.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  await until(t, () => [members(anaView).length, members(liView).length, members(anaOtherView).length], [2, 2, 2], 'all see both')

  const note = anaView.getByLabelText('note')
  for (const text of ['H', 'He', 'Hel', 'Hell', 'Hello']) fireEvent.change(note, { target: { value: text } })
  await until(t, () => label(liView, 'typing'), 'ana typing…', 'li sees ana typing')
  t.equal(label(anaView, 'typing'), '', 'ana does not see herself')
  t.equal(label(anaOtherView, 'typing'), '', 'nor in her other tab')
  t.same(sentOfType(ana.sockets, 'typing'), [{ type: 'typing', povId: 'p1', typing: true }], 'five keystrokes, one typing: true')

  await until(t, () => label(liView, 'typing'), '', 'gone after ana\'s pause', 5000)
  t.same(sentOfType(ana.sockets, 'typing'), [
    { type: 'typing', povId: 'p1', typing: true }, { type: 'typing', povId: 'p1', typing: false }
  ], 'then one typing: false')
  t.same(receivedOfType(li.sockets, 'typing'), [
    { type: 'typing', povId: 'p1', userId: 'ana', typing: true }, { type: 'typing', povId: 'p1', userId: 'ana', typing: false }
  ], 'li heard both')
  t.same(receivedOfType(ana.sockets, 'typing'), [], 'the server never echoed ana\'s typing to her')
})

t.test('typing goes away when the typist\'s tab closes without a typing: false', async (t) => {
  const server = await startServer(t, { presence })
  const [ana, li] = openTabs(t, server.httpUrl, 'ana', 'li')
  const anaView = ana.show(<NoteBox povId='p1' />)
  const liView = li.show(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>)
  await until(t, () => members(liView).length, 2, 'li sees ana')
  fireEvent.change(anaView.getByLabelText('note'), { target: { value: 'Hi' } })
  await until(t, () => label(liView, 'typing'), 'ana typing…', 'li sees ana typing')
  // The socket goes without a word (a closed laptop lid, a killed tab).
  ana.sockets.sockets[0]!.terminate()
  await until(t, () => label(liView, 'typing'), '', 'the server stopped ana\'s typing on disconnect', 5000)
  t.equal(sentOfType(ana.sockets, 'typing').filter((frame) => frame.typing === false).length, 0, 'ana never said false')
})
