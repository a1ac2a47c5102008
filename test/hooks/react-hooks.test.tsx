/**
 * The React hooks in jsdom against a real server of the plugin on loopback. Sockets are the `ws` package's WebSocket
 * and the token route is called through Node's fetch with the access cookie added (jsdom's cookie jar does not reach
 * Node's fetch, and its WebSocket would not let us record what the client sends).
 */
import 'global-jsdom/register'
import { Profiler, StrictMode, useState } from 'react'
import { act, cleanup, render, screen } from '@testing-library/react'
import tap from 'tap'
import {
  PovRealtimeProvider,
  useActivityEffect,
  usePovActivities,
  useWebSocket,
  type ActivityEvent,
  type RealtimeClientOptions
} from '../../hooks/index.js'
import { activity, sleep, startServer, waitFor, type Teardown } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { clientSetup, sentOfType, until } from '../helpers/hook-fixtures.js'

/** Renders `ui` under a provider for the server at `httpUrl`; unmounted at teardown. */
function renderWithServer (t: Teardown, httpUrl: string, ui: React.ReactNode, options: RealtimeClientOptions = {}, signedIn = true) {
  const setup = clientSetup(httpUrl, { reconnect: { initialDelay: 100, maxDelay: 1000 }, ...options })
  if (!signedIn) setup.fetches.cookie = undefined
  const { socketUrl, tokenUrl, ...rest } = setup.clientOptions
  const view = render(<PovRealtimeProvider socketUrl={socketUrl} tokenUrl={tokenUrl} options={rest}>{ui}</PovRealtimeProvider>)
  t.teardown(() => cleanup())
  return { ...setup, view }
}

function Status () {
  const { connectionStatus, authError } = useWebSocket()
  return <p data-testid='status'>{authError ? `auth error ${authError.status}` : connectionStatus}</p>
}

function Feed ({ povId, testId = `feed-${povId}`, limit }: { povId: string, testId?: string, limit?: number }) {
  const { activities, pendingIds } = usePovActivities(povId, { limit })
  return (
    <ul data-testid={testId}>
      {activities.map((a) => <li key={a.id}>{a.id}{pendingIds.has(a.id) ? ' (sending)' : ''}</li>)}
    </ul>
  )
}

const text = (testId: string) => screen.getByTestId(testId).textContent
const items = (testId: string) => [...screen.getByTestId(testId).querySelectorAll('li')].map((li) => li.textContent)

tap.test('components share one socket and one subscription per PoV, and StrictMode opens one socket', async (t) => {
  const server = await startServer(t)
  const { sockets, fetches } = renderWithServer(t, server.httpUrl, (
    <StrictMode>
      <Status />
      <Feed povId='p1' testId='first' />
      <Feed povId='p1' testId='second' />
      <Feed povId='p2' />
    </StrictMode>
  ))
  await until(t, () => text('status'), 'connected')
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'subscriptions')
  await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  await until(t, () => [items('first'), items('second')], [['a1'], ['a1']], 'both p1 feeds show it')
  t.same(items('feed-p2'), [], 'p2 shows nothing of p1')
  t.equal(sockets.sockets.length, 1, 'one socket for four components, under StrictMode')
  t.equal(fetches.calls.length, 1, 'one token request')
  t.equal(server.app.povRealtime.stats().connections, 1)
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 1, 'one subscribe for two components on p1')
  t.equal(sentOfType(sockets, 'unsubscribe').length, 0, "StrictMode's remount unsubscribed nothing")
})

tap.test('the last component to unmount unsubscribes its PoV, and the socket closes after the linger', async (t) => {
  const server = await startServer(t)
  let setFeeds: (n: number) => void = () => {}
  function Feeds () {
    const [count, set] = useState(2)
    setFeeds = set
    return <>{Array.from({ length: count }, (_, i) => <Feed key={i} povId='p1' testId={`feed-${i}`} />)}</>
  }
  const { sockets, view } = renderWithServer(t, server.httpUrl, <Feeds />, { linger: 300 })
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  act(() => setFeeds(1))
  await sleep(100)
  t.equal(sentOfType(sockets, 'unsubscribe').length, 0, 'one component still watches p1')
  act(() => setFeeds(0))
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 0, 5000, 'unsubscribed')
  t.same(sentOfType(sockets, 'unsubscribe'), [{ type: 'unsubscribe', povId: 'p1' }])
  t.equal(server.app.povRealtime.stats().connections, 1, 'the socket stays while the provider is mounted… for the linger')
  view.unmount()
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'socket closed when none needs it')
  t.pass('closed after the linger')
})

tap.test('a burst of 1000 activities re-renders a feed far fewer than 1000 times, and the list keeps the newest 200', async (t) => {
  const server = await startServer(t)
  const renders: Record<string, number> = {}
  const count = (id: string) => { renders[id] = (renders[id] ?? 0) + 1 }
  renderWithServer(t, server.httpUrl, (
    <>
      <Status />
      <Profiler id='p1' onRender={() => count('p1')}><Feed povId='p1' /></Profiler>
      <Profiler id='p2' onRender={() => count('p2')}><Feed povId='p2' /></Profiler>
    </>
  ))
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'subscribed')
  await until(t, () => text('status'), 'connected')
  const before = { ...renders }
  // One activity per event-loop turn, so that they reach the client as separate frames in separate tasks.
  for (let i = 0; i < 1000; i++) {
    await server.app.broadcastActivity(activity('p1', { id: `a${i}` }))
    await new Promise((resolve) => setImmediate(resolve))
  }
  await until(t, () => items('feed-p1').at(-1), 'a999')
  const p1Renders = renders.p1! - before.p1!
  t.ok(p1Renders < 100, `the p1 feed rendered ${p1Renders} times for 1000 activities`)
  t.equal(renders.p2, before.p2, 'the p2 feed did not re-render at all')
  const shown = items('feed-p1')
  t.equal(shown.length, 200, 'bounded to the default 200')
  t.equal(shown[0], 'a800', 'the oldest kept is the 800th')
  t.same(shown, Array.from({ length: 200 }, (_, i) => `a${800 + i}`), 'oldest first, in order')
})

tap.test('the list bound is configurable per provider and per hook', async (t) => {
  const server = await startServer(t)
  renderWithServer(t, server.httpUrl, <><Feed povId='p1' /><Feed povId='p1' testId='last-3' limit={3} /></>, { activityLimit: 5 })
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  for (let i = 0; i < 8; i++) await server.app.broadcastActivity(activity('p1', { id: `a${i}` }))
  await until(t, () => items('feed-p1'), ['a3', 'a4', 'a5', 'a6', 'a7'])
  t.same(items('last-3'), ['a5', 'a6', 'a7'])
})

tap.test('an optimistic activity shows at once, is replaced by the server copy, and one never confirmed is dropped', async (t) => {
  const server = await startServer(t)
  let feed: ReturnType<typeof usePovActivities> | undefined
  function Poster () {
    feed = usePovActivities('p1')
    return <Feed povId='p1' />
  }
  renderWithServer(t, server.httpUrl, <Poster />, { optimisticTimeout: 400 })
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  const mine = activity('p1', { id: 'mine' })
  act(() => feed!.addOptimistic(mine))
  await until(t, () => items('feed-p1'), ['mine (sending)'])
  await server.app.broadcastActivity(activity('p1', { id: 'theirs' }))
  await server.app.broadcastActivity(mine)
  await until(t, () => items('feed-p1'), ['theirs', 'mine'], 'as expected', 5000)
  await sleep(600)
  t.same(items('feed-p1'), ['theirs', 'mine'], 'confirmed: no timeout removes it, no duplicate')

  act(() => feed!.addOptimistic(activity('p1', { id: 'lost' })))
  await until(t, () => items('feed-p1'), ['theirs', 'mine', 'lost (sending)'])
  await until(t, () => items('feed-p1'), ['theirs', 'mine'], 'as expected', 3000)
  act(() => feed!.addOptimistic(activity('p1', { id: 'failed' })))
  await until(t, () => items('feed-p1').length, 3)
  act(() => { t.equal(feed!.removeOptimistic('failed'), true) })
  await until(t, () => items('feed-p1'), ['theirs', 'mine'])
})

tap.test('a network drop shows disconnected, then reconnected, and the feed gets what was published meanwhile, once', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { sockets } = renderWithServer(t, proxy.httpUrl, <><Status /><Feed povId='p1' /></>)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  const { cursor } = await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  await until(t, () => items('feed-p1'), ['a1'])

  proxy.cut()
  await until(t, () => text('status'), 'disconnected')
  await server.app.broadcastActivity(activity('p1', { id: 'a2' }))
  proxy.restore()
  await until(t, () => text('status'), 'reconnected')
  await until(t, () => items('feed-p1'), ['a1', 'a2'])
  t.same(sentOfType(sockets, 'subscribe', 'p1').at(-1), { type: 'subscribe', povId: 'p1', since: cursor })
})

tap.test('after a server restart the status is reconnected, the PoV resubscribed, and the invalidation callback hears a resync', async (t) => {
  const first = await startServer(t)
  const proxy = await startTcpProxy(t, first.port)
  const events: ActivityEvent[] = []
  function Invalidator () {
    useActivityEffect('p1', (event) => events.push(event))
    return null
  }
  const { sockets } = renderWithServer(t, proxy.httpUrl, <><Status /><Invalidator /><Feed povId='p1' /></>)
  await waitFor(() => first.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  await first.app.broadcastActivity(activity('p1', { id: 'a1' }))
  await until(t, () => items('feed-p1'), ['a1'])
  t.same(events.map((e) => e.type === 'activity' && e.activity.id), ['a1'], 'called with the activity')

  await first.app.close()
  await until(t, () => text('status'), 'disconnected')
  const second = await startServer(t)
  proxy.retarget(second.port)
  await until(t, () => text('status'), 'reconnected')
  await waitFor(() => events.length === 2, 5000, 'resync')
  t.same(events[1], { type: 'resync', povId: 'p1' }, 'once more after a resume that was not recovered')
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 2, 'resubscribed')
  await second.app.broadcastActivity(activity('p1', { id: 'b1' }))
  await until(t, () => items('feed-p1'), ['a1', 'b1'])
  t.equal(events.length, 3, 'and on with the new activities')
})

tap.test('a 401 from the token route shows the auth error and stops: no socket, no retry', async (t) => {
  const server = await startServer(t)
  const { sockets, fetches } = renderWithServer(t, server.httpUrl, <Status />, {}, false)
  await until(t, () => text('status'), 'auth error 401')
  await sleep(1000)
  t.equal(fetches.calls.length, 1, 'asked once')
  t.equal(sockets.sockets.length, 0, 'no socket')
})

tap.test('a token refreshed in-band before it expires keeps the one socket alive past its expiry', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '3s' })
  const seen: string[] = []
  function StatusLog () {
    const { connectionStatus } = useWebSocket()
    if (seen.at(-1) !== connectionStatus) seen.push(connectionStatus)
    return <p data-testid='status'>{connectionStatus}</p>
  }
  const { sockets, fetches } = renderWithServer(t, server.httpUrl, <><StatusLog /><Feed povId='p1' /></>)
  await until(t, () => text('status'), 'connected')
  await sleep(7000) // two to three token lifetimes
  t.equal(sockets.sockets.length, 1, 'still the first socket')
  t.equal(sockets.sockets[0]!.readyState, 1, 'and it is open')
  t.same(seen, ['disconnected', 'connected'], 'the status never dropped')
  t.ok(sentOfType(sockets, 'auth').length >= 2, `refreshed in-band ${sentOfType(sockets, 'auth').length} times`)
  t.ok(fetches.calls.length >= 3, 'a fresh token for each refresh')
  t.equal(server.app.povRealtime.stats().closed[4002] ?? 0, 0, 'the server never closed it for expiry')
  await server.app.broadcastActivity(activity('p1', { id: 'late' }))
  await until(t, () => items('feed-p1'), ['late'])
})

tap.test("ping and pong never reach lastMessage; sendMessage's subscribe counts as watching", async (t) => {
  const server = await startServer(t)
  let api: ReturnType<typeof useWebSocket> | undefined
  function Raw () {
    api = useWebSocket()
    return <p data-testid='last'>{api.lastMessage?.type ?? 'none'}</p>
  }
  let showFeed: (show: boolean) => void = () => {}
  function Toggle () {
    const [show, set] = useState(true)
    showFeed = set
    return show ? <Feed povId='p1' /> : null
  }
  const { sockets } = renderWithServer(t, server.httpUrl, <><Raw /><Toggle /></>, { pingInterval: 100 })
  await until(t, () => text('last'), 'subscribed')
  act(() => api!.sendMessage({ type: 'subscribe', povId: 'p1' })) // the seed's usage, next to the hook on the same PoV
  await sleep(500)
  t.ok(sentOfType(sockets, 'ping').length >= 3, 'pings went out')
  t.equal(text('last'), 'subscribed', 'their pongs never became lastMessage')
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 1, 'already subscribed: nothing more sent')

  act(() => showFeed(false))
  await sleep(200)
  t.equal(sentOfType(sockets, 'unsubscribe').length, 0, 'the sendMessage subscription still watches p1')
  act(() => api!.sendMessage({ type: 'unsubscribe', povId: 'p1' }))
  await until(t, () => text('last'), 'unsubscribed')
  t.equal(sentOfType(sockets, 'unsubscribe', 'p1').length, 1)
})

tap.test("the page's online event makes a waiting client retry at once", async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  // The default network signals (the page's `window`), and a backoff long enough that only the event can explain a quick return.
  renderWithServer(t, proxy.httpUrl, <Status />, { network: undefined, reconnect: { initialDelay: 60_000, jitter: 0 } })
  await until(t, () => text('status'), 'connected')
  proxy.cut()
  await until(t, () => text('status'), 'disconnected')
  proxy.restore()
  await sleep(300)
  t.equal(text('status'), 'disconnected', 'still waiting out the backoff')
  window.dispatchEvent(new window.Event('online'))
  await until(t, () => text('status'), 'reconnected', 'back at once', 5000)
})
