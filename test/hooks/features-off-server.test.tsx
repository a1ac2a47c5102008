/**
 * The hooks against real servers with `presence` or `readReceipts` off (each alone, and both): whatever the components
 * do (type, go idle, mark read), the client sends no message of a feature that is off, so the server never answers
 * `NOT_ENABLED`, and the feature that is on works as usual.
 */
import 'global-jsdom/register'
import { cleanup, fireEvent } from '@testing-library/react'
import t from 'tap'
import type { PovRealtimeOptions } from '../../index.js'
import { activity, sleep, startServer, waitFor } from '../helpers/server.js'
import { NoteBox, Receipts, WhoIsHere, feed, label, members } from '../helpers/feature-views.js'
import { receivedOfType, sentOfType, until } from '../helpers/hook-fixtures.js'
import { openTabs } from '../helpers/server-tabs.js'

t.afterEach(() => cleanup())

const servers: Array<[string, Partial<PovRealtimeOptions>]> = [
  ['both off', {}],
  ['presence on, read receipts off', { presence: true }],
  ['read receipts on, presence off', { readReceipts: true }]
]

for (const [name, options] of servers) {
  const presenceOn = options.presence === true
  const readsOn = options.readReceipts === true
  t.test(`${name}: no NOT_ENABLED whatever the hooks are asked to do`, async (t) => {
    const server = await startServer(t, options)
    const [ana, li] = openTabs(t, server.httpUrl, 'ana', 'li')
    const everything = <><WhoIsHere povId='p1' /><NoteBox povId='p1' /><Receipts povId='p1' /></>
    const anaView = ana.show(everything)
    const liView = li.show(everything)
    await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'both subscribed')
    const { cursor } = await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
    for (const view of [anaView, liView]) await until(t, () => feed(view), ['a1'], 'the feed works')

    fireEvent.change(anaView.getByLabelText('note'), { target: { value: 'Hi' } })
    ana.page.hide()
    fireEvent.click(anaView.getByText('Mark all read'))
    if (presenceOn) {
      await until(t, () => label(liView, 'typing'), 'ana typing…', 'li sees ana typing')
      await until(t, () => members(liView), ['ana:idle:', 'li:active:'], 'and idle')
    }
    if (readsOn) await until(t, () => label(liView, 'reads'), `ana@${cursor}`, 'li sees ana\'s mark')
    await sleep(500)

    const rejected = server.app.povRealtime.stats().rejected
    t.same(rejected, {}, 'the server refused nothing')
    t.same([...receivedOfType(ana.sockets, 'error'), ...receivedOfType(li.sockets, 'error')], [], 'no error reached either tab')
    const sentTypes = new Set(ana.sockets.sent.map((frame) => frame.type))
    t.same({
      status: sentTypes.has('status'),
      typing: sentTypes.has('typing'),
      read: sentTypes.has('read'),
      reads: sentTypes.has('reads')
    }, { status: presenceOn, typing: presenceOn, read: readsOn, reads: readsOn }, 'only the messages of features that are on')
    if (!presenceOn) t.same([members(anaView), label(liView, 'typing')], [[], ''], 'presence off: nobody listed, nobody typing')
    if (!readsOn) {
      t.same([label(anaView, 'unread'), label(anaView, 'mark'), label(liView, 'reads')], ['unknown', 'none', ''],
        'read receipts off: no count, no mark')
    }
    t.same(sentOfType(ana.sockets, 'subscribe'), [{ type: 'subscribe', povId: 'p1' }], 'one subscription, never refused')
  })
}
