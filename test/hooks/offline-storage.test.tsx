/**
 * `persist`: a reload (a new client on the same storage) shows the kept feed at once and resumes after its cursor;
 * another user on the same browser sees nothing of the first; a mark made offline survives the reload and is sent once;
 * sign-out clears it; a storage that is full or refuses access never breaks the hooks. Rendered in jsdom inside
 * `MockWebSocketProvider`, on jsdom's own sessionStorage and localStorage.
 */
import 'global-jsdom/register'
import { act, cleanup, render, screen } from '@testing-library/react'
import t from 'tap'
import {
  PERSIST_KEY_PREFIX, RealtimeClient, clearPersistedRealtimeState, usePovActivities, useReadReceipts, type PersistOption,
  type RealtimeClientOptions, type StorageLike
} from '../../hooks/index.js'
import {
  MockWebSocketProvider, getSentMessages, resetWebSocketMock, simulateConnectionStatus, simulateSubscribed,
  simulateWebSocketMessage
} from '../../hooks/testing/index.js'
import { mockServer } from '../../hooks/testing/mock-server.js'
import { manualClock, type ManualClock } from '../helpers/manual-clock.js'
import { FakePage, MemoryStorage } from '../helpers/page-doubles.js'

function Feed ({ povId }: { povId: string }) {
  const { activities } = usePovActivities(povId)
  const { unread, readCursor, markRead } = useReadReceipts(povId)
  return (
    <section>
      <ul aria-label='feed'>{activities.map((a) => <li key={a.id}>{a.id}</li>)}</ul>
      <p aria-label='unread'>{unread === null ? 'unknown' : String(unread)}</p>
      <p aria-label='mark'>{readCursor ?? 'none'}</p>
      <button onClick={() => markRead()}>Mark all read</button>
    </section>
  )
}

const activity = (n: number, povId = 'p1') => ({
  type: 'activity' as const,
  cursor: `c${n}`,
  data: { id: `a${n}`, povId, type: 'note', action: 'created', userId: 'li', title: `A${n}`, message: `message ${n}`, createdAt: '2026-01-01T00:00:00.000Z' }
})
const feed = () => [...screen.getByRole('list', { name: 'feed' }).querySelectorAll('li')].map((li) => li.textContent)
const label = (name: string) => screen.getByLabelText(name).textContent
const ourKeys = (storage: StorageLike) => Array.from({ length: storage.length }, (_, i) => storage.key(i)!).filter((key) => key.startsWith(PERSIST_KEY_PREFIX))

let clock: ManualClock
let page: FakePage

/** A page load: a fresh client (as after a reload) for `userId`, on the given storage. */
function load (userId: string, persist: PersistOption = 'session') {
  const sentBefore = getSentMessages().length
  const view = render(
    <MockWebSocketProvider options={{ userId, persist, timers: clock, document: page }}><Feed povId='p1' /></MockWebSocketProvider>)
  return { view, sentSince: () => getSentMessages().slice(sentBefore) }
}

/**
 * Leaves the page as a reload does: the page is hidden (the client writes), everything unmounts, and the old client is
 * gone (its unsubscribe and linger have run), so that it hears nothing more.
 */
async function leave (view: ReturnType<typeof render>) {
  act(() => page.hide())
  view.unmount()
  await Promise.resolve()
  act(() => clock.advance(60_000))
  page.show()
}

t.beforeEach(() => {
  resetWebSocketMock()
  clock = manualClock()
  page = new FakePage()
})
t.afterEach(() => cleanup())

t.test('a reload shows the kept feed at once and resumes after its cursor: no gap, no duplicate', async (t) => {
  const first = load('ana')
  act(() => {
    simulateSubscribed('p1', { readCursor: null, unread: 0 })
    for (const n of [1, 2, 3]) simulateWebSocketMessage(activity(n))
  })
  t.same(feed(), ['a1', 'a2', 'a3'])
  await leave(first.view)
  t.equal(ourKeys(sessionStorage).length, 1, 'kept in sessionStorage (the default)')

  const second = load('ana')
  t.same(feed(), ['a1', 'a2', 'a3'], 'the feed shows at once, before the server has said anything')
  t.same(second.sentSince(), [{ type: 'subscribe', povId: 'p1', since: 'c3' }], 'and resumes after the last cursor')
  act(() => {
    // The server replays what was published meanwhile; a3 again (say it raced the reload) is not shown twice.
    simulateWebSocketMessage(activity(3))
    simulateWebSocketMessage(activity(4))
    simulateSubscribed('p1', { recovered: true, readCursor: null, unread: 4 })
  })
  t.same(feed(), ['a1', 'a2', 'a3', 'a4'], 'each activity once, in order')
})

t.test('after an in-band resync, a reload resumes from the resync\'s cursor, not from one of the lost history', async (t) => {
  const first = load('ana')
  act(() => {
    simulateSubscribed('p1', { readCursor: null, unread: 0 })
    for (const n of [1, 2]) simulateWebSocketMessage(activity(n))
    simulateWebSocketMessage({ type: 'resync', povId: 'p1', cursor: 'c9' })
  })
  await leave(first.view)
  const second = load('ana')
  t.same(feed(), ['a1', 'a2'], 'the kept feed shows at once')
  t.same(second.sentSince(), [{ type: 'subscribe', povId: 'p1', since: 'c9' }], 'and resumes where the server said delivery goes on')
})

t.test('a second user on the same browser sees nothing of the first, whose state stays theirs', async (t) => {
  const ana = load('ana')
  act(() => { for (const n of [1, 2]) simulateWebSocketMessage(activity(n)) })
  await leave(ana.view)

  const li = load('li')
  t.same(feed(), [], 'li sees none of ana\'s feed')
  t.same(li.sentSince(), [{ type: 'subscribe', povId: 'p1' }], 'nor resumes from her cursor')
  act(() => simulateWebSocketMessage(activity(9)))
  await leave(li.view)
  t.equal(ourKeys(sessionStorage).length, 2, 'one key per user')

  load('ana')
  t.same(feed(), ['a1', 'a2'], 'ana, back, finds hers')
})

t.test('a markRead made offline survives a reload and is sent once, on the next subscription', async (t) => {
  const first = load('ana')
  act(() => simulateSubscribed('p1', { readCursor: null, unread: 0 }))
  act(() => simulateWebSocketMessage(activity(1)))
  act(() => simulateConnectionStatus('disconnected'))
  act(() => screen.getByRole('button', { name: 'Mark all read' }).click())
  t.equal(label('unread'), '0')
  first.view.unmount() // no page hide: a queued mark is written at once
  await Promise.resolve()
  act(() => clock.advance(60_000))
  act(() => simulateConnectionStatus('connected'))

  const second = load('ana')
  t.equal(label('mark'), 'c1', 'the mark shows at once after the reload')
  t.equal(label('unread'), '0')
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: null, unread: 1 }))
  t.same(second.sentSince(), [
    { type: 'subscribe', povId: 'p1', since: 'c1' },
    { type: 'read', povId: 'p1', cursor: 'c1' },
    { type: 'reads', povId: 'p1' }
  ], 'sent once the PoV is subscribed (before asking for everyone\'s marks)')
  await leave(second.view)

  const third = load('ana')
  act(() => simulateSubscribed('p1', { recovered: true, readCursor: 'c1', unread: 0 }))
  t.same(third.sentSince().filter((m) => m.type === 'read'), [], 'and never again')
})

t.test("persist: 'local' keeps it in localStorage, false nowhere", async (t) => {
  t.teardown(() => clearPersistedRealtimeState())
  const local = load('ana', 'local')
  act(() => simulateWebSocketMessage(activity(1)))
  await leave(local.view)
  t.equal(ourKeys(localStorage).length, 1)
  t.equal(ourKeys(sessionStorage).length, 0)
  clearPersistedRealtimeState()

  const none = load('ana', false)
  act(() => simulateWebSocketMessage(activity(1)))
  await leave(none.view)
  t.equal(ourKeys(localStorage).length + ourKeys(sessionStorage).length, 0, 'nothing written')
  load('ana', false)
  t.same(feed(), [], 'nothing shown after a reload')
})

t.test('clearPersistedRealtimeState() on sign-out: the next sign-in starts from nothing', async (t) => {
  const first = load('ana')
  act(() => simulateWebSocketMessage(activity(1)))
  await leave(first.view)
  clearPersistedRealtimeState()
  t.equal(ourKeys(sessionStorage).length, 0, 'the storage is clean')
  const second = load('ana')
  t.same(feed(), [])
  t.same(second.sentSince(), [{ type: 'subscribe', povId: 'p1' }])
})

t.test('a storage that refuses access or is full never breaks the hooks', async (t) => {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'sessionStorage')!
  Object.defineProperty(globalThis, 'sessionStorage', { configurable: true, get () { throw new DOMException('denied', 'SecurityError') } })
  t.teardown(() => Object.defineProperty(globalThis, 'sessionStorage', descriptor))
  const refused = load('ana')
  act(() => simulateWebSocketMessage(activity(1)))
  await t.resolves(leave(refused.view), 'refused access: no error')

  const full = new MemoryStorage()
  full.quota = 10
  const quota = load('ana', full)
  act(() => { for (const n of [1, 2, 3]) simulateWebSocketMessage(activity(n)) })
  t.doesNotThrow(() => act(() => page.hide()), 'quota exceeded: no error')
  t.same(feed(), ['a1', 'a2', 'a3'], 'the feed works on')
  quota.view.unmount()
})

t.test('without a usable storage, the client keeps the state in memory: a remount resumes after its cursor', async (t) => {
  const full = new MemoryStorage()
  full.quota = 0
  const client = mockServer.createClient({ userId: 'ana', persist: full, timers: clock, document: page })
  const unregister = mockServer.register(client)
  t.teardown(unregister)
  let release = client.retain()
  let unwatch = client.watch('p1')
  act(() => { for (const n of [1, 2]) simulateWebSocketMessage(activity(n)) })
  unwatch()
  release()
  await Promise.resolve()
  client.close()
  const sentBefore = getSentMessages().length
  release = client.retain()
  unwatch = client.watch('p1')
  t.same(client.getActivities('p1').activities.map((a) => a.id), ['a1', 'a2'], 'the feed comes back from memory')
  t.same(getSentMessages().slice(sentBefore), [{ type: 'subscribe', povId: 'p1', since: 'c2' }])
  unwatch()
  release()
  client.close()
})

/** A token whose payload names `userId` (the client reads it, unverified). */
const tokenOf = (userId: string) => `e30.${btoa(JSON.stringify({ userId }))}.x`

/**
 * A client on the app's own transport and token provider (both are client options): an in-memory server that records
 * what the client sends, and the given tokens.
 */
function clientOnMemoryServer (socketUrl: string, tokens: RealtimeClientOptions['tokens']) {
  const frames: Array<Record<string, unknown>> = []
  let deliver: (message: object) => void = () => {}
  const client = new RealtimeClient({
    socketUrl,
    persist: new MemoryStorage(),
    timers: clock,
    document: page,
    batchWindow: 0,
    pingInterval: false,
    network: null,
    tokens,
    transport: {
      connect: () => ({
        listen (events) {
          deliver = (message) => events.message(JSON.stringify(message))
          events.open()
        },
        send: (data) => { frames.push(JSON.parse(data)) },
        close: () => {}
      })
    }
  })
  return { client, frames, deliver: (message: object) => deliver(message) }
}

t.test("a token of another user on a live client: nothing the first user's session held stays in view", async (t) => {
  // A session whose user changes (signed out and in as someone else in another tab, say).
  let user = 'ana'
  const { client, frames, deliver } = clientOnMemoryServer('ws://switch.example/ws', {
    usable: () => ({ token: tokenOf(user), expiresAt: Number.POSITIVE_INFINITY }),
    fetch: async () => ({ token: tokenOf(user), expiresAt: Number.POSITIVE_INFINITY }),
    refreshAt: () => Number.POSITIVE_INFINITY,
    invalidate: () => {}
  })
  const release = client.retain()
  const unwatch = client.watch('p1')
  deliver({ type: 'subscribed', povId: 'p1', readCursor: null, unread: 0 })
  deliver(activity(1))
  t.equal(client.userId, 'ana')
  t.same(client.getActivities('p1').activities.map((a) => a.id), ['a1'])

  user = 'li'
  client.reconnect()
  t.equal(client.userId, 'li')
  t.same(client.getActivities('p1').activities, [], "ana's activities are gone")
  t.same(client.getReadReceipts('p1'), { reads: [], readCursor: null, unread: null }, 'and her read state')
  t.same(frames.at(-1), { type: 'subscribe', povId: 'p1' }, 'li does not resume from her cursor')
  unwatch()
  release()
  client.close()
})

t.test("signed out with close() alone, then another user: the first user's kept feed never shows", async (t) => {
  // close() is the documented sign-out for the socket; the kept state is cleared by clearPersistedRealtimeState(). An
  // app that calls only close() must still not show one user's feed to the next while the next token is on its way.
  let user = 'ana'
  let signedIn = true
  const { client, frames, deliver } = clientOnMemoryServer('ws://signout.example/ws', {
    // After sign-out no token is at hand: the next one is fetched, asynchronously, as from the token route.
    usable: () => signedIn ? { token: tokenOf(user), expiresAt: Number.POSITIVE_INFINITY } : undefined,
    fetch: async () => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      signedIn = true
      return { token: tokenOf(user), expiresAt: Number.POSITIVE_INFINITY }
    },
    refreshAt: () => Number.POSITIVE_INFINITY,
    invalidate: () => {}
  })
  let release = client.retain()
  let unwatch = client.watch('p1')
  deliver({ type: 'subscribed', povId: 'p1', readCursor: null, unread: 0 })
  deliver(activity(1))
  t.same(client.getActivities('p1').activities.map((a) => a.id), ['a1'], 'ana sees her feed')
  unwatch()
  release()
  client.close()

  user = 'li'
  signedIn = false
  frames.length = 0
  release = client.retain()
  unwatch = client.watch('p1')
  t.same(client.getActivities('p1').activities, [], "before li's token is read, none of ana's feed shows")
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(client.userId, 'li')
  t.same(client.getActivities('p1').activities, [], "nor after: ana's feed stays hers")
  t.same(frames.filter((frame) => frame.type === 'subscribe'), [{ type: 'subscribe', povId: 'p1' }], 'li does not resume from her cursor')
  unwatch()
  release()
  client.close()
})
