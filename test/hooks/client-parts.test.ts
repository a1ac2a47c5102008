/**
 * The client's parts on their own: backoff curve, URL resolution, the activity store, the watch registry, the
 * bounded queue and the token source. Time is a hand-driven clock here, so nothing sleeps.
 */
import t from 'tap'
import { ActivityList } from '../../hooks/client/activity-list.js'
import { backoffDelay, DEFAULT_BACKOFF } from '../../hooks/client/connection/backoff.js'
import { BoundedQueue } from '../../hooks/client/support/bounded-queue.js'
import { resolveSocketUrl } from '../../hooks/client/client-options.js'
import { AuthError, HttpTokenProvider, TokenFetchError } from '../../hooks/client/connection/token-source.js'
import { WatchRegistry } from '../../hooks/client/watch-registry.js'
import type { Activity } from '../../types/activity.js'
import { manualClock } from '../helpers/manual-clock.js'

const act = (id: string, povId = 'p1'): Activity => ({
  id, povId, type: 'note', action: 'created', userId: 'u1', title: id, message: '', createdAt: '2026-01-01T00:00:00.000Z'
})

t.test('reconnect delays double from initialDelay up to maxDelay, and jitter only ever shortens them', async (t) => {
  const options = { initialDelay: 500, maxDelay: 30_000, factor: 2, jitter: 0.5 }
  t.same([0, 1, 2, 3, 6, 7, 20].map((attempt) => backoffDelay(attempt, options, () => 0)),
    [500, 1000, 2000, 4000, 30_000, 30_000, 30_000], 'without jitter: the curve and its cap')
  for (let attempt = 0; attempt < 10; attempt++) {
    const ceiling = Math.min(30_000, 500 * 2 ** attempt)
    const low = backoffDelay(attempt, options, () => 0.999999)
    t.ok(low >= ceiling / 2 && low <= ceiling, `attempt ${attempt}: ${low} within [${ceiling / 2}, ${ceiling}]`)
  }
  t.same(DEFAULT_BACKOFF, options, 'the documented defaults')
})

t.test('the socket URL defaults to the page origin, wss on https pages', async (t) => {
  t.equal(resolveSocketUrl('/ws', { href: 'https://app.example.com/povs/1' }), 'wss://app.example.com/ws')
  t.equal(resolveSocketUrl('/ws', { href: 'http://localhost:3000/' }), 'ws://localhost:3000/ws')
  t.equal(resolveSocketUrl('/realtime/ws', { href: 'https://app.example.com:8443/x' }), 'wss://app.example.com:8443/realtime/ws')
  t.equal(resolveSocketUrl('wss://rt.example.com/ws', undefined), 'wss://rt.example.com/ws', 'an absolute URL as is')
  t.throws(() => resolveSocketUrl('/ws', undefined), /outside a page/, 'no page, no relative URL')
})

t.test('the activity store: deduplicated by id, oldest first, bounded, published once per batch', async (t) => {
  const flushes: Array<() => void> = []
  const store = new ActivityList({ capacity: 3, timers: manualClock(), schedule: (flush) => flushes.push(flush) })
  const before = store.getSnapshot()
  for (const id of ['a1', 'a2', 'a2', 'a3', 'a4']) store.add(act(id), `c-${id}`)
  t.equal(store.getSnapshot(), before, 'nothing published until the batch ends')
  t.equal(flushes.length, 1, 'one flush scheduled for the whole burst')
  flushes.shift()!()
  t.same(store.getSnapshot().activities.map((a) => a.id), ['a2', 'a3', 'a4'], 'the newest 3, oldest first, a2 once')
  t.equal(store.add(act('a3'), 'c-a3'), false, 'a duplicate is refused')
  t.equal(store.add(act('a1'), 'c-a1'), true, 'an id that fell out of the window is new again')
  t.ok(Object.isFrozen(store.getSnapshot().activities), 'snapshots are immutable')
})

t.test('optimistic entries: shown pending, replaced by the server copy, dropped on timeout or on request', async (t) => {
  const clock = manualClock()
  const store = new ActivityList({ capacity: 10, timers: clock, schedule: (flush) => flush() })
  store.add(act('a1'), 'c-a1')
  const { createdAt: _omitted, ...input } = act('mine')
  store.addOptimistic(input, 1000)
  let snapshot = store.getSnapshot()
  t.same(snapshot.activities.map((a) => a.id), ['a1', 'mine'])
  t.ok(snapshot.pendingIds.has('mine'))
  t.equal(snapshot.activities[1]!.createdAt, new Date(clock.now()).toISOString(), 'createdAt defaults to now')
  store.add(act('a2'), 'c-a2')
  t.same(store.getSnapshot().activities.map((a) => a.id), ['a1', 'a2', 'mine'], 'pending ones stay last')
  store.add(act('mine'), 'c-mine')
  snapshot = store.getSnapshot()
  t.same(snapshot.activities.map((a) => a.id), ['a1', 'a2', 'mine'], 'the server copy, once')
  t.equal(snapshot.pendingIds.size, 0)
  clock.advance(2000)
  t.same(store.getSnapshot().activities.map((a) => a.id), ['a1', 'a2', 'mine'], 'a confirmed one never times out')

  store.addOptimistic(act('a1'), 1000)
  t.equal(store.getSnapshot().pendingIds.size, 0, 'an id already confirmed is not added again')
  store.addOptimistic(act('lost'), 1000)
  clock.advance(999)
  t.ok(store.getSnapshot().pendingIds.has('lost'))
  clock.advance(1)
  t.notOk(store.getSnapshot().activities.some((a) => a.id === 'lost'), 'dropped after the timeout')
  store.addOptimistic(act('failed'), 0)
  t.equal(store.removeOptimistic('failed'), true)
  t.equal(store.removeOptimistic('failed'), false)
  t.same(store.getSnapshot().activities.map((a) => a.id), ['a1', 'a2', 'mine'])
})

t.test('the watch registry counts watchers and keeps a leaving PoV until it settles', async (t) => {
  const registry = new WatchRegistry()
  t.equal(registry.add('p1'), true, 'first watcher: subscribe')
  t.equal(registry.add('p1'), false, 'second: nothing to send')
  registry.advance('p1', 'c7')
  t.equal(registry.remove('p1'), false)
  t.equal(registry.remove('p1'), true, 'the last one leaves')
  t.equal(registry.add('p1'), false, 'back before it settled (StrictMode): still subscribed')
  t.same(registry.subscriptions(), [{ type: 'subscribe', povId: 'p1', since: 'c7' }], 'the cursor survived')
  registry.remove('p1')
  t.equal(registry.settle('p1'), true, 'settled: unsubscribe')
  t.same(registry.subscriptions(), [])
  t.equal(registry.remove('p1'), false, 'removing an unknown PoV is harmless')
})

t.test('the bounded queue drops the oldest', async (t) => {
  const queue = new BoundedQueue<number>(2)
  t.equal(queue.push(1), undefined)
  t.equal(queue.push(2), undefined)
  t.equal(queue.push(3), 1, 'the oldest goes')
  t.same(queue.drain(), [2, 3])
  t.equal(queue.size, 0)
})

t.test('the token source reuses a token while a third of its life is left, and tells auth errors from outages', async (t) => {
  const clock = manualClock(0)
  let requests = 0
  let answer = (): Response => Response.json({ token: `t${requests}`, expiresAt: clock.now() + 3_600_000 })
  const tokens = new HttpTokenProvider({
    url: 'http://127.0.0.1:9/token',
    timers: clock,
    fetch: async () => {
      requests++
      return answer()
    }
  })
  t.equal(tokens.usable(), undefined, 'none before the first fetch')
  const [first, same] = await Promise.all([tokens.fetch(), tokens.fetch()])
  t.equal(requests, 1, 'concurrent fetches share one request')
  t.equal(first, same)
  t.equal(tokens.refreshAt(first), 3_600_000 - 5 * 60_000, 'an hour-long token is refreshed 5 minutes early (the cap)')
  clock.advance(3_600_000 - 5 * 60_000 - 1)
  t.equal(tokens.usable(), first, 'reused while it has life left')
  clock.advance(1)
  t.equal(tokens.usable(), undefined, 'not once it is due for refresh')

  answer = () => Response.json({ token: 'short', expiresAt: clock.now() + 3000 })
  const short = await tokens.fetch()
  t.equal(tokens.refreshAt(short), clock.now() + 2000, 'a 3 s token is refreshed a third of its life early')

  answer = () => Response.json({ statusCode: 401, message: 'session expired' }, { status: 401 })
  const refused = await tokens.fetch().catch((err: unknown) => err)
  t.ok(refused instanceof AuthError)
  t.match(refused, { status: 401, message: 'session expired' })
  answer = () => new Response('busy', { status: 503 })
  t.ok(await tokens.fetch().catch((err: unknown) => err) instanceof TokenFetchError, 'a 503 is an outage, not a sign-out')
  answer = () => Response.json({ nope: true })
  t.ok(await tokens.fetch().catch((err: unknown) => err) instanceof TokenFetchError, 'a malformed body too')
})
