/**
 * The test doubles as an app uses them: a component of the app, rendered inside `MockWebSocketProvider`, driven by
 * `simulate*` calls. Imported by package name, so this is what the package ships (`npm run build` first).
 * No runner globals are involved: tap here, and the same code runs under node:test, vitest or jest.
 */
import 'global-jsdom/register'
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import t from 'tap'
import {
  useConnectionStatus, useWebSocket, usePovActivities, useActivityEffect, usePresence, useTyping, useReadReceipts
} from 'fastify-pov-realtime/hooks'
import {
  MockWebSocketProvider,
  getSentMessages,
  mockUseWebSocket,
  resetWebSocketMock,
  simulateConnectionStatus,
  simulateJoin,
  simulateLeave,
  simulatePresence,
  simulateRead,
  simulateResync,
  simulateRevoke,
  simulateStatus,
  simulateSubscribed,
  simulateTyping,
  simulateWebSocketMessage
} from 'fastify-pov-realtime/testing'

// ---- the app's component under test ----------------------------------------------------------

let invalidations = 0

function PovFeed ({ povId }: { povId: string }) {
  const { connectionStatus, sendMessage } = useWebSocket()
  const { activities } = usePovActivities(povId)
  useActivityEffect(povId, () => { invalidations++ })
  return (
    <section>
      <p role='status'>
        {connectionStatus === 'disconnected' ? 'Offline: reconnecting…' : connectionStatus === 'reconnected' ? 'Back online' : 'Live'}
      </p>
      <ul>{activities.map((a) => <li key={a.id}>{a.title}</li>)}</ul>
      <button onClick={() => sendMessage({ type: 'status', status: 'idle' })}>Away</button>
    </section>
  )
}

function PovHeader ({ povId }: { povId: string }) {
  const members = usePresence(povId)
  const { typingUserIds, setTyping } = useTyping(povId)
  const { unread, markRead, readersOf } = useReadReceipts(povId)
  const { activities } = usePovActivities(povId)
  return (
    <header>
      <p aria-label='here'>{members.map((m) => `${m.userId} (${m.status})`).join(', ')}</p>
      <p aria-label='typing'>{typingUserIds.map((id) => `${id} is typing…`).join(' ')}</p>
      <p aria-label='unread'>{unread ?? '?'} new</p>
      <p aria-label='seen'>{activities.map((a) => `${a.title}: ${readersOf(a.id).join(', ')}`).join('; ')}</p>
      <input aria-label='note' onChange={() => setTyping(true)} onBlur={() => setTyping(false)} />
      <button onClick={() => markRead()}>Seen it</button>
    </header>
  )
}

/** What the app shows when the server revokes access: to a PoV (its `error`), or to everything (the connection state). */
function GuardedFeed ({ povId }: { povId: string }) {
  const { state } = useConnectionStatus()
  const { activities, error } = usePovActivities(povId)
  useActivityEffect(povId, (event) => { if (event.type === 'revoked') invalidations++ })
  if (state === 'revoked') return <p role='alert'>Your access was withdrawn</p>
  if (error) return <p role='alert'>{povId}: {error.message}</p>
  return <ul>{activities.map((a) => <li key={a.id}>{a.title}</li>)}</ul>
}

const activityMessage = (id: string, povId: string, title: string, cursor: string) => ({
  type: 'activity' as const,
  cursor,
  data: { id, type: 'note', action: 'created', povId, userId: 'u1', title, message: '', createdAt: '2026-01-01T00:00:00.000Z' }
})

// ---- the tests, as the app would write them ---------------------------------------------------

t.beforeEach(() => {
  resetWebSocketMock()
  invalidations = 0
})
t.afterEach(() => cleanup())

t.test('shows that it is offline while disconnected, and back online after a reconnect', async (t) => {
  render(<MockWebSocketProvider><PovFeed povId='p1' /></MockWebSocketProvider>)
  t.equal(screen.getByRole('status').textContent, 'Live', 'the mock starts connected')
  act(() => simulateConnectionStatus('disconnected'))
  t.equal(screen.getByRole('status').textContent, 'Offline: reconnecting…')
  act(() => simulateConnectionStatus('reconnected'))
  t.equal(screen.getByRole('status').textContent, 'Back online')
  act(() => simulateConnectionStatus('connected'))
  t.equal(screen.getByRole('status').textContent, 'Live')
})

t.test('subscribes to its PoV on mount, and after a reconnect resumes after the last activity it saw', async (t) => {
  const { unmount } = render(<MockWebSocketProvider><PovFeed povId='p1' /></MockWebSocketProvider>)
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }])
  act(() => simulateWebSocketMessage(activityMessage('a1', 'p1', 'First', 'c1')))
  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }, { type: 'subscribe', povId: 'p1', since: 'c1' }])
  unmount()
  await Promise.resolve() // the unsubscribe goes out on the next microtask (StrictMode-proof)
  t.same(getSentMessages().at(-1), { type: 'unsubscribe', povId: 'p1' })
})

t.test('lists the activities of its PoV once each, ignores other PoVs, and tells the app to invalidate', async (t) => {
  render(<MockWebSocketProvider><PovFeed povId='p1' /></MockWebSocketProvider>)
  act(() => {
    simulateWebSocketMessage(activityMessage('a1', 'p1', 'Note added', 'c1'))
    simulateWebSocketMessage(activityMessage('a1', 'p1', 'Note added', 'c1'))
    simulateWebSocketMessage(activityMessage('b1', 'p2', 'Not mine', 'c2'))
    simulateWebSocketMessage(activityMessage('a2', 'p1', 'Check passed', 'c3'))
  })
  t.same(screen.getAllByRole('listitem').map((li) => li.textContent), ['Note added', 'Check passed'])
  t.equal(invalidations, 2, 'one invalidation per new activity')
  act(() => {
    simulateConnectionStatus('disconnected')
    simulateConnectionStatus('reconnected')
    simulateWebSocketMessage({ type: 'subscribed', povId: 'p1', recovered: false })
  })
  t.equal(invalidations, 3, 'and one more when the resume could not fill the gap')
  act(() => simulateResync('p1', 'c9'))
  t.equal(invalidations, 4, 'and one more when the server says in-band that its broker lost activities (resync)')
  t.equal(screen.getByRole('status').textContent, 'Back online', 'a resync is no reconnect: the status stays')
  act(() => simulateResync('p2'))
  t.equal(invalidations, 4, 'a resync of a PoV the component does not watch changes nothing')
  act(() => {
    simulateConnectionStatus('disconnected')
    simulateConnectionStatus('reconnected')
  })
  t.same(getSentMessages().at(-1), { type: 'subscribe', povId: 'p1', since: 'c9' }, 'the next resume starts at the resync\'s cursor')
})

t.test('what it sends while offline goes out after the reconnect', async (t) => {
  render(<MockWebSocketProvider><PovFeed povId='p1' /></MockWebSocketProvider>)
  act(() => simulateConnectionStatus('disconnected'))
  act(() => screen.getByRole('button', { name: 'Away' }).click())
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }], 'nothing sent while offline')
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages().slice(1), [{ type: 'subscribe', povId: 'p1' }, { type: 'status', status: 'idle' }])
})

t.test('resetWebSocketMock clears the sent messages and the watched PoVs', async (t) => {
  render(<MockWebSocketProvider><PovFeed povId='p1' /></MockWebSocketProvider>)
  act(() => simulateWebSocketMessage(activityMessage('a1', 'p1', 'First', 'c1')))
  act(() => resetWebSocketMock())
  t.same(getSentMessages(), [])
  t.same(screen.queryAllByRole('listitem'), [], 'the list is empty again')
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages(), [], 'nothing is watched any more, so nothing is resubscribed')
})

t.test('simulateRevoke(povId): the PoV shows the revocation and is not resubscribed after a reconnect until mounted again', async (t) => {
  const { rerender } = render(<MockWebSocketProvider><GuardedFeed povId='p1' /><GuardedFeed povId='p2' /></MockWebSocketProvider>)
  act(() => simulateWebSocketMessage(activityMessage('a1', 'p1', 'First', 'c1')))
  act(() => simulateRevoke('p1'))
  t.same(screen.getAllByRole('alert').map((p) => p.textContent), ['p1: access revoked'])
  t.equal(invalidations, 1, 'the activity effect heard it')
  act(() => {
    simulateConnectionStatus('disconnected')
    simulateConnectionStatus('reconnected')
  })
  t.same(getSentMessages().slice(2), [{ type: 'subscribe', povId: 'p2' }], 'only p2 is subscribed again')
  rerender(<MockWebSocketProvider><GuardedFeed povId='p2' /></MockWebSocketProvider>)
  rerender(<MockWebSocketProvider><GuardedFeed povId='p1' /><GuardedFeed povId='p2' /></MockWebSocketProvider>)
  await Promise.resolve()
  t.same(getSentMessages().slice(3), [{ type: 'subscribe', povId: 'p1', since: 'c1' }], 'mounted again, it asks again')
  act(() => simulateSubscribed('p1'))
  t.same(screen.queryAllByRole('alert'), [], 'and shows its feed once subscribed')
})

t.test('simulateRevoke(): the session is revoked (4003) and stays so until reconnect', async (t) => {
  render(<MockWebSocketProvider><GuardedFeed povId='p1' /></MockWebSocketProvider>)
  act(() => simulateRevoke())
  t.same(screen.getAllByRole('alert').map((p) => p.textContent), ['Your access was withdrawn'])
  t.equal(invalidations, 1)
  act(() => simulateWebSocketMessage(activityMessage('a1', 'p1', 'First', 'c1')))
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }], 'no reconnection, no resubscription')
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages().slice(1), [{ type: 'subscribe', povId: 'p1' }], 'reconnect() subscribes again')
  act(() => simulateSubscribed('p1'))
  t.same(screen.queryAllByRole('alert'), [])
})

t.test('a FORBIDDEN on a subscribed PoV (a repeated subscribe refused) shows as its error', async (t) => {
  render(<MockWebSocketProvider><GuardedFeed povId='p1' /></MockWebSocketProvider>)
  act(() => simulateSubscribed('p1'))
  act(() => simulateWebSocketMessage({ type: 'error', code: 'FORBIDDEN', message: 'not allowed to watch this PoV', povId: 'p1' }))
  t.same(screen.getAllByRole('alert').map((p) => p.textContent), ['p1: not allowed to watch this PoV'])
})

t.test('a refused PoV is asked for again by a new watcher (the app granted access meanwhile, say)', async (t) => {
  const { rerender } = render(<MockWebSocketProvider><GuardedFeed povId='p1' /></MockWebSocketProvider>)
  act(() => simulateWebSocketMessage({ type: 'error', code: 'FORBIDDEN', message: 'not allowed to watch this PoV', povId: 'p1' }))
  rerender(<MockWebSocketProvider><GuardedFeed povId='p1' /><GuardedFeed povId='p1' /></MockWebSocketProvider>)
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }, { type: 'subscribe', povId: 'p1' }], 'asked again')
  act(() => simulateSubscribed('p1'))
  t.same(screen.queryAllByRole('alert'), [], 'and shown once subscribed')
})

t.test('mockUseWebSocket has useWebSocket\'s shape and follows the same simulate calls, without a provider', async (t) => {
  let seen: ReturnType<typeof mockUseWebSocket> | undefined
  function Banner () {
    seen = mockUseWebSocket()
    return <p role='status'>{seen.connectionStatus}{seen.lastMessage ? `: ${seen.lastMessage.type}` : ''}</p>
  }
  render(<Banner />)
  t.same(Object.keys(seen!).sort(), ['authError', 'connectionStatus', 'isConnected', 'lastMessage', 'reconnect', 'sendMessage'])
  t.equal(screen.getByRole('status').textContent, 'connected')
  act(() => simulateWebSocketMessage({ type: 'error', code: 'FORBIDDEN', message: 'no', povId: 'p9' }))
  t.equal(screen.getByRole('status').textContent, 'connected: error')
  act(() => simulateConnectionStatus('disconnected'))
  t.equal(screen.getByRole('status').textContent, 'disconnected: error')
  t.equal(seen!.isConnected, false)
  act(() => seen!.sendMessage({ type: 'subscribe', povId: 'p3' }))
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p3' }], 'the queued subscription goes out on reconnect')
})

t.test('presence, typing and read receipts: the simulate helpers drive the hooks, and what they send is recorded', async (t) => {
  render(<MockWebSocketProvider options={{ userId: 'me' }}><PovHeader povId='p1' /></MockWebSocketProvider>)
  const label = (name: string) => screen.getByLabelText(name).textContent
  act(() => {
    simulateSubscribed('p1', { readCursor: null, unread: 0 }) // a server with read receipts on
    simulatePresence('p1', ['me', 'li'])                       // … and presence on
  })
  t.equal(label('here'), 'li (active), me (active)')
  act(() => simulateJoin('p1', { userId: 'ana', info: { name: 'Ana' } }))
  act(() => simulateStatus('p1', 'li', 'idle'))
  t.equal(label('here'), 'ana (active), li (idle), me (active)')
  act(() => simulateLeave('p1', 'ana'))
  act(() => simulateTyping('p1', 'li'))
  t.equal(label('here'), 'li (idle), me (active)')
  t.equal(label('typing'), 'li is typing…')
  act(() => simulateTyping('p1', 'li', false))
  t.equal(label('typing'), '')

  act(() => simulateWebSocketMessage(activityMessage('a1', 'p1', 'Note added', 'c1')))
  t.equal(label('unread'), '1 new')
  fireEvent.change(screen.getByLabelText('note'), { target: { value: 'h' } })
  fireEvent.blur(screen.getByLabelText('note'))
  act(() => screen.getByRole('button', { name: 'Seen it' }).click())
  t.equal(label('unread'), '0 new')
  act(() => simulateRead('p1', 'li', 'c1'))
  t.equal(label('seen'), 'Note added: li, me')
  t.same(getSentMessages().filter((m) => ['typing', 'read', 'reads'].includes(m.type)), [
    { type: 'reads', povId: 'p1' },
    { type: 'typing', povId: 'p1', typing: true },
    { type: 'typing', povId: 'p1', typing: false },
    { type: 'read', povId: 'p1', cursor: 'c1' }
  ])
})

t.test('the idle status a component reports is recorded too', async (t) => {
  let visibility = 'visible'
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility })
  t.teardown(() => { delete (document as { visibilityState?: unknown }).visibilityState })
  render(<MockWebSocketProvider><PovHeader povId='p1' /></MockWebSocketProvider>)
  act(() => simulatePresence('p1', ['test-user']))
  visibility = 'hidden'
  act(() => { document.dispatchEvent(new window.Event('visibilitychange')) })
  t.same(getSentMessages().filter((m) => m.type === 'status'), [{ type: 'status', status: 'idle' }])
})
