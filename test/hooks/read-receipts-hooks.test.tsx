/**
 * `useReadReceipts` rendered in jsdom inside `MockWebSocketProvider`: the unread count and mark from `subscribed`,
 * everyone's marks from `reads` and `read`, "seen by", and `markRead` (forward only, queued while offline and sent
 * once). What the component shows, and what it puts on the wire.
 */
import 'global-jsdom/register'
import { act, cleanup, render, screen } from '@testing-library/react'
import t from 'tap'
import { usePovActivities, useReadReceipts, type ReadReceipts } from '../../hooks/index.js'
import {
  MOCK_USER_ID, MockWebSocketProvider, getSentMessages, resetWebSocketMock, simulateConnectionStatus, simulateRead,
  simulateReads, simulateReadsMoved, simulateSubscribed, simulateWebSocketMessage
} from '../../hooks/testing/index.js'

let latest: ReadReceipts

function Receipts ({ povId }: { povId: string }) {
  const { activities, error } = usePovActivities(povId)
  const receipts = latest = useReadReceipts(povId)
  const { reads, readCursor, unread, markRead, readersOf } = receipts
  return (
    <section>
      <p aria-label='unread'>{unread === null ? 'unknown' : String(unread)}</p>
      <p aria-label='mark'>{readCursor ?? 'none'}</p>
      <p aria-label='reads'>{reads.map((mark) => `${mark.userId}@${mark.cursor}`).join(' ')}</p>
      <p aria-label='error'>{error?.code ?? ''}</p>
      <ul aria-label='feed'>{activities.map((a) => <li key={a.id}>{a.id} seen by {readersOf(a.id).join(',') || 'nobody'}</li>)}</ul>
      <button onClick={() => markRead()}>Mark all read</button>
    </section>
  )
}

const activity = (n: number, povId = 'p1') => ({
  type: 'activity' as const,
  cursor: `c${n}`,
  data: { id: `a${n}`, povId, type: 'note', action: 'created', userId: 'li', title: `A${n}`, message: '', createdAt: '2026-01-01T00:00:00.000Z' }
})
const label = (name: string) => screen.getByLabelText(name).textContent
const feed = () => [...screen.getByRole('list', { name: 'feed' }).querySelectorAll('li')].map((li) => li.textContent)
const sent = (type: string) => getSentMessages().filter((message) => message.type === type)
const markAllRead = () => act(() => screen.getByRole('button', { name: 'Mark all read' }).click())

t.beforeEach(() => resetWebSocketMock())
t.afterEach(() => cleanup())

t.test('the mark and unread count come with subscribed, reads are asked for, live activities count, markRead sends the newest once', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  t.equal(label('unread'), 'unknown', 'unknown before the subscription is confirmed')
  act(() => {
    // A resume replays first; the count in subscribed includes the replayed activities.
    simulateWebSocketMessage(activity(1))
    simulateWebSocketMessage(activity(2))
    simulateSubscribed('p1', { readCursor: 'c1', unread: 1 })
  })
  t.equal(label('unread'), '1')
  t.equal(label('mark'), 'c1')
  t.same(sent('reads'), [{ type: 'reads', povId: 'p1' }], 'everyone\'s marks are asked for on subscription')

  act(() => simulateReads('p1', [{ userId: 'li', cursor: 'c2' }, { userId: MOCK_USER_ID, cursor: 'c1' }]))
  t.equal(label('reads'), `li@c2 ${MOCK_USER_ID}@c1`)
  t.same(feed(), [`a1 seen by li,${MOCK_USER_ID}`, 'a2 seen by li'])

  act(() => simulateWebSocketMessage(activity(3)))
  t.equal(label('unread'), '2', 'a live activity is one more unread')
  markAllRead()
  t.same(sent('read'), [{ type: 'read', povId: 'p1', cursor: 'c3' }], 'markRead() marks the newest activity held')
  t.equal(label('unread'), '0', 'shown at once')
  t.equal(label('mark'), 'c3')
  markAllRead()
  t.equal(latest.markRead('c2'), false, 'an older cursor')
  t.equal(latest.markRead('c3'), false, 'the same one')
  t.equal(sent('read').length, 1, 'nothing that does not move the mark forward is sent')

  act(() => simulateRead('p1', MOCK_USER_ID, 'c3'))
  act(() => simulateRead('p1', 'li', 'c3'))
  t.same(feed(), [`a1 seen by li,${MOCK_USER_ID}`, `a2 seen by li,${MOCK_USER_ID}`, `a3 seen by li,${MOCK_USER_ID}`], 'read events move the marks')
  t.equal(sent('read').length, 1, "the server's echo sends nothing")
})

t.test('a busy PoV: marks moved in one server window (an unsolicited reads) merge into the answer\'s; the own one moves readCursor', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => {
    for (const n of [1, 2, 3]) simulateWebSocketMessage(activity(n))
    simulateSubscribed('p1', { readCursor: 'c1', unread: 2 })
  })
  t.same(sent('reads'), [{ type: 'reads', povId: 'p1' }])
  act(() => simulateReads('p1', [{ userId: 'cy', cursor: 'c1' }, { userId: 'li', cursor: 'c1' }, { userId: MOCK_USER_ID, cursor: 'c1' }]))
  t.equal(label('reads'), `cy@c1 li@c1 ${MOCK_USER_ID}@c1`, 'the answer')

  act(() => simulateReadsMoved('p1', [{ userId: 'li', cursor: 'c3' }, { userId: 'bo', cursor: 'c2' }, { userId: MOCK_USER_ID, cursor: 'c2' }]))
  t.equal(label('reads'), `bo@c2 cy@c1 li@c3 ${MOCK_USER_ID}@c2`, 'merged: cy, who did not move, stays')
  t.equal(label('mark'), 'c2', "the user's own mark in the batch moves readCursor")
  t.equal(label('unread'), '1', 'and the count')
  t.same(feed(), [`a1 seen by bo,cy,li,${MOCK_USER_ID}`, `a2 seen by bo,li,${MOCK_USER_ID}`, 'a3 seen by li'])
  t.equal(sent('read').length, 0, 'nothing is sent back')

  act(() => simulateReads('p1', [{ userId: 'li', cursor: 'c3' }]))
  t.equal(label('reads'), `bo@c2 cy@c1 li@c3 ${MOCK_USER_ID}@c2`, 'with no request unanswered, a reads merges')
})

t.test("the user's mark moved in another tab: readCursor follows, unread is counted again among the activities held", async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 4 }))
  t.equal(label('mark'), 'none')
  act(() => { for (const n of [1, 2, 3]) simulateWebSocketMessage(activity(n)) })
  t.equal(label('unread'), '7', "the server's 4 in its history window, and 3 live ones")
  act(() => simulateRead('p1', MOCK_USER_ID, 'c2'))
  t.equal(label('mark'), 'c2')
  t.equal(label('unread'), '1', 'only a3 comes after c2')
  act(() => simulateRead('p1', MOCK_USER_ID, 'c1'))
  t.equal(label('mark'), 'c2', 'a mark never moves back')
  t.equal(latest.markRead('c4'), true, 'a cursor the client does not hold yet (say from the answer to its own post)')
  t.equal(label('unread'), '1', 'cannot be placed: the count waits')
  act(() => simulateWebSocketMessage(activity(4)))
  t.equal(label('unread'), '0', 'once it arrives, it and all before it are read')
})

t.test('activities replayed on a resume are not counted twice: the count of the next subscribed includes them', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 2 }))
  act(() => simulateWebSocketMessage(activity(1)))
  t.equal(label('unread'), '3')
  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulateWebSocketMessage(activity(2)))
  t.equal(label('unread'), '3', 'a replayed activity waits for the server\'s count')
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: null, unread: 4 }))
  t.equal(label('unread'), '4')
  act(() => simulateWebSocketMessage(activity(3)))
  t.equal(label('unread'), '5', 'live again')
})

t.test('a server with read receipts off: nothing is asked for or sent, the mark and count stay unknown', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1'))
  act(() => simulateWebSocketMessage(activity(1)))
  markAllRead()
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }], 'no reads, no read (the server would answer NOT_ENABLED)')
  t.equal(label('unread'), 'unknown')
  t.equal(label('mark'), 'none')
})

t.test('a markRead made offline shows at once and is sent once, when the PoV is subscribed again', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 0 }))
  act(() => simulateWebSocketMessage(activity(1)))
  act(() => simulateConnectionStatus('disconnected'))
  markAllRead()
  t.equal(label('unread'), '0', 'the badge clears at once, offline')
  t.same(sent('read'), [], 'nothing can be sent yet')
  act(() => simulateConnectionStatus('reconnected'))
  t.same(sent('read'), [], 'not before the subscription is confirmed (the server refuses a read on an unsubscribed PoV)')
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: null, unread: 1 }))
  t.same(sent('read'), [{ type: 'read', povId: 'p1', cursor: 'c1' }], 'sent once subscribed')
  t.equal(label('mark'), 'c1', "the local mark stays over the server's older one")
  t.equal(label('unread'), '0')
  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: 'c1', unread: 0 }))
  t.equal(sent('read').length, 1, 'and only once')
})

t.test('a subscription without readCursor after one with it (the mark store unreachable): marks wait, nothing is lost', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 0 }))
  act(() => simulateWebSocketMessage(activity(1)))
  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulateSubscribed('p1', { recovered: true }))
  t.equal(label('unread'), '1', 'the client keeps what it had')
  markAllRead()
  t.equal(label('unread'), '0', 'the mark still shows at once')
  t.same(sent('read'), [], 'but waits')
  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: null, unread: 1 }))
  t.same(sent('read'), [{ type: 'read', povId: 'p1', cursor: 'c1' }], 'and goes out once the marks are back')
})

t.test('a refused read or typing on a subscribed PoV does not show the feed as failed; a refused subscription does', async (t) => {
  render(<MockWebSocketProvider><Receipts povId='p1' /><Receipts povId='p2' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 0 }))
  act(() => {
    simulateWebSocketMessage({ type: 'error', code: 'INVALID_MESSAGE', message: 'not a cursor of p1', povId: 'p1' })
    simulateWebSocketMessage({ type: 'error', code: 'NOT_ENABLED', message: 'off', povId: 'p2' })
  })
  const errors = screen.getAllByLabelText('error').map((p) => p.textContent)
  t.same(errors, ['', ''], 'neither shows')
  act(() => simulateWebSocketMessage({ type: 'error', code: 'FORBIDDEN', message: 'no', povId: 'p2' }))
  t.same(screen.getAllByLabelText('error').map((p) => p.textContent), ['', 'FORBIDDEN'])
})
