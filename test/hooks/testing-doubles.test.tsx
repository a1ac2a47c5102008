/**
 * The test doubles as an app uses them: a component of the app, rendered inside `MockWebSocketProvider`, driven by
 * `simulate*` calls. Imported by package name, so this is what the package ships (`npm run build` first).
 * No runner globals are involved: tap here, and the same code runs under node:test, vitest or jest.
 */
import 'global-jsdom/register'
import { act, cleanup, render, screen } from '@testing-library/react'
import t from 'tap'
import { useWebSocket, usePovActivities, useActivityEffect } from 'fastify-pov-realtime/hooks'
import {
  MockWebSocketProvider,
  getSentMessages,
  mockUseWebSocket,
  resetWebSocketMock,
  simulateConnectionStatus,
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
