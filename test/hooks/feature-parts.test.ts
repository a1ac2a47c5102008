/**
 * The parts behind presence, typing, idle status, read receipts and offline storage, each on its own, on a hand-driven
 * clock and a stand-in page: the throttle, the idle timer, the member list, the order of cursors, the storage bounds.
 */
import t from 'tap'
import { IdleDetector, INPUT_EVENTS, type PageDocument } from '../../hooks/client/presence/idle-detector.js'
import { ActivityList } from '../../hooks/client/activity-list.js'
import { PersistedState, clearPersistedRealtimeState, MAX_PERSISTED_POVS, PERSIST_KEY_PREFIX, PERSIST_WRITE_DELAY, type StorageLike } from '../../hooks/client/persistence/persisted-state.js'
import { PresenceStore } from '../../hooks/client/presence/presence-store.js'
import { PovReadReceipts } from '../../hooks/client/read-receipts/pov-read-receipts.js'
import { userIdOfToken } from '../../hooks/client/connection/token-claims.js'
import { TypingSender } from '../../hooks/client/presence/typing-sender.js'
import type { Activity } from '../../types/activity.js'
import type { MemberStatus } from '../../types/messages.js'
import { socketToken } from '../helpers/server.js'
import { manualClock } from '../helpers/manual-clock.js'
import { FakePage, MemoryStorage } from '../helpers/page-doubles.js'

const activity = (id: string, povId = 'p1', message = ''): Activity => ({
  id, povId, type: 'note', action: 'created', userId: 'u1', title: id, message, createdAt: '2026-01-01T00:00:00.000Z'
})

t.test('the user id is read from the token payload without verifying it, and an opaque token names nobody', async (t) => {
  t.equal(userIdOfToken(socketToken({ userId: 'ana', sub: 'ana' })), 'ana', "the plugin's own token")
  t.equal(userIdOfToken(socketToken({ userId: 'Zoë-ñ' })), 'Zoë-ñ', 'UTF-8 in the payload')
  t.equal(userIdOfToken(socketToken({ userId: undefined, sub: 'li' })), 'li', 'sub when there is no userId')
  for (const opaque of ['mock-token', '', 'a.b.c', 'a.%%%.c', 'x.' + btoa('"just a string"') + '.y', 'x.' + btoa('{"userId":42}') + '.y']) {
    t.equal(userIdOfToken(opaque), undefined, `nobody in ${JSON.stringify(opaque)}`)
  }
})

t.test('typing on every keystroke sends typing: true once per interval, and typing: false once after a pause', async (t) => {
  const clock = manualClock()
  const sent: boolean[] = []
  let stopped = 0
  const sender = new TypingSender({ interval: 3000, timers: clock, send: (typing) => { sent.push(typing); return true }, stopped: () => stopped++ })
  for (let ms = 0; ms < 10_000; ms += 100) {
    sender.start()
    clock.advance(100)
  }
  t.same(sent, [true, true, true, true], '100 keystrokes over 10 s: true at 0, 3, 6 and 9 s')
  clock.advance(2899)
  t.same(sent.length, 4, 'no false before a full interval of quiet')
  clock.advance(1)
  t.same(sent, [true, true, true, true, false], 'then one false')
  t.equal(stopped, 1)
  clock.advance(60_000)
  t.equal(sent.length, 5, 'and nothing more')
  t.equal(clock.pending, 0, 'no timer left')

  sender.start()
  sender.stop()
  sender.stop()
  t.same(sent.slice(5), [true, false], 'an explicit stop sends false once')

  sender.start()
  sender.forget() // the connection dropped: the server stopped it already
  clock.advance(5000)
  t.same(sent.slice(7), [true], 'nothing after forgetting')
  sender.start()
  t.same(sent.slice(7), [true, true], 'the next keystroke announces again at once (the new connection never heard it)')
})

t.test('a keystroke that cannot be sent is tried again on the next one, and a stop then sends nothing', async (t) => {
  const clock = manualClock()
  let connected = false
  const sent: boolean[] = []
  const sender = new TypingSender({ interval: 3000, timers: clock, send: (typing) => { if (connected) sent.push(typing); return connected }, stopped: () => {} })
  sender.start()
  clock.advance(100)
  sender.stop()
  connected = true
  t.same(sent, [], 'never announced, so no false either')
  sender.start()
  t.same(sent, [true])
  t.equal(clock.pending, 1, 'one timer watches for the pause')
})

function monitor (page: PageDocument, idleTimeout = 60_000) {
  const clock = manualClock()
  const changes: MemberStatus[] = []
  const watcher = new IdleDetector({ document: page, timers: clock, idleTimeout, changed: (status) => changes.push(status) })
  return { clock, changes, watcher }
}

t.test('idle after the timeout without input, active again on input; hiding the page is idle at once', async (t) => {
  const page = new FakePage()
  const { clock, changes, watcher } = monitor(page)
  clock.advance(59_999)
  t.same(changes, [], 'active until the full timeout')
  page.input('keydown')
  clock.advance(59_999)
  t.same(changes, [], 'an input starts the timeout again')
  clock.advance(1)
  t.same(changes, ['idle'])
  t.equal(watcher.status, 'idle')
  for (const type of INPUT_EVENTS) page.input(type)
  t.same(changes, ['idle', 'active'], 'any input is back, and only the change is reported')
  page.hide()
  t.same(changes, ['idle', 'active', 'idle'], 'hidden: idle at once')
  page.input('pointermove')
  t.same(changes.length, 3, 'input on a hidden page changes nothing')
  clock.advance(120_000)
  page.show()
  t.same(changes, ['idle', 'active', 'idle', 'active'], 'shown again: active')
  watcher.stop()
  t.equal(page.listenerCount, 0, 'stop removes every listener')
  t.equal(clock.pending, 0, 'and the timer')
})

t.test('a storm of pointer moves costs no timer per event', async (t) => {
  const page = new FakePage()
  const { clock, changes } = monitor(page, 1000)
  for (let i = 0; i < 10_000; i++) {
    page.input('pointermove')
    if (i % 100 === 0) clock.advance(10)
  }
  t.ok(clock.pending <= 1, `${clock.pending} timer(s) waiting`)
  t.same(changes, [])
})

t.test('a page that starts hidden starts idle', async (t) => {
  const page = new FakePage()
  page.hide()
  const { changes, watcher } = monitor(page)
  t.same(changes, ['idle'])
  t.equal(watcher.status, 'idle')
})

t.test('members: sorted by userId, replaced by each snapshot, changed by diffs; a leave stops typing', async (t) => {
  const clock = manualClock()
  const store = new PresenceStore({ timers: clock, typingExpiry: 30_000, schedule: (flush) => flush() })
  const member = (userId: string, status: MemberStatus = 'active') => ({ userId, status, info: {} })
  store.replace([member('li'), member('ana'), member('Bo')])
  t.same(store.members.get().map((m) => m.userId), ['Bo', 'ana', 'li'], 'code-unit order, whatever the locale')
  store.apply([member('ana', 'idle'), member('cy')], ['li'])
  t.same(store.members.get().map((m) => `${m.userId}:${m.status}`), ['Bo:active', 'ana:idle', 'cy:active'], 'a status change comes as a join')
  store.apply([member('li')], ['li'])
  t.ok(store.members.get().some((m) => m.userId === 'li'), 'leaves apply before joins')
  store.setTyping('cy', true)
  store.setTyping('ana', true)
  t.same(store.typing.get(), ['ana', 'cy'])
  store.apply([], ['cy'])
  t.same(store.typing.get(), ['ana'], 'a member who leaves stops typing')
  store.replace([member('Bo')])
  t.same(store.typing.get(), [], 'so does one missing from a new snapshot')
  t.ok(Object.isFrozen(store.members.get()), 'immutable snapshots')
})

t.test("another member's typing lapses after the expiry if their false is lost; a new true starts it again", async (t) => {
  const clock = manualClock()
  const store = new PresenceStore({ timers: clock, typingExpiry: 30_000, schedule: (flush) => flush() })
  store.setTyping('li', true)
  clock.advance(20_000)
  store.setTyping('li', true)
  clock.advance(29_999)
  t.same(store.typing.get(), ['li'], 'counted from the last true')
  clock.advance(1)
  t.same(store.typing.get(), [], 'lapsed')
  store.setTyping('li', true)
  store.clearTyping()
  t.same(store.typing.get(), [], 'a reconnect clears it')
  t.equal(clock.pending, 0, 'and its timer')
})

t.test('read marks are ordered by where their activities stand among those held', async (t) => {
  const store = new ActivityList({ capacity: 5, timers: manualClock(), schedule: (flush) => flush() })
  for (const n of [1, 2, 3, 4]) store.add(activity(`a${n}`), `c${n}`)
  const reads = new PovReadReceipts(store, (flush) => flush())
  t.equal(reads.compare('c3', null), 1, 'anything is newer than no mark')
  t.equal(reads.compare('c3', 'c2'), 1)
  t.equal(reads.compare('c2', 'c3'), -1)
  t.equal(reads.compare('c2', 'c2'), 0)
  t.equal(reads.compare('c9', 'c2'), undefined, 'a cursor not held cannot be placed')

  reads.subscribed('c1', 12, false)
  t.same(reads.value.get(), { reads: [], readCursor: 'c1', unread: 12 }, "the server's count at subscription")
  reads.activityArrived('c5')
  t.equal(reads.value.get().unread, 13, 'one more per live activity')
  t.equal(reads.advance('c3'), true)
  t.same(reads.value.get(), { reads: [], readCursor: 'c3', unread: 1 }, 'counted again among the held: a4 is after c3')
  t.equal(reads.advance('c2'), false, 'an older mark does not move it back')
  t.equal(reads.advance('c3'), false, 'nor does the same')
  reads.subscribed('c1', 12, true)
  t.same(reads.value.get().readCursor, 'c3', "a local mark the server has not heard yet stays at the server's subscription")

  reads.markMoved({ userId: 'li', cursor: 'c2', readAt: '2026-01-01T00:00:00.000Z' })
  reads.markMoved({ userId: 'ana', cursor: 'c4', readAt: '2026-01-01T00:00:00.000Z' })
  reads.markMoved({ userId: 'cy', cursor: 'elsewhere', readAt: '2026-01-01T00:00:00.000Z' })
  t.same(reads.value.get().reads.map((mark) => mark.userId), ['ana', 'cy', 'li'], 'every mark, sorted by user')
  t.same(reads.readersAt(store.positionOfId('a2')), ['ana', 'li'], 'seen by: marks at or after a2')
  t.same(reads.readersAt(store.positionOfId('a4')), ['ana'])
  t.same(reads.readersAt(store.positionOfId('unknown')), [], 'nothing about an activity not held')

  const sorted = reads.value.get().reads
  reads.activityArrived('c6')
  reads.advance('c4')
  t.equal(reads.value.get().reads, sorted, 'the unread count and the own mark moving keep the sorted marks as they were (not sorted again)')
  reads.marksMoved([
    { userId: 'bo', cursor: 'c3', readAt: '2026-01-01T00:00:01.000Z' },
    { userId: 'li', cursor: 'c4', readAt: '2026-01-01T00:00:01.000Z' }
  ])
  t.not(reads.value.get().reads, sorted, 'moved marks make a new list')
  t.same(reads.value.get().reads.map((mark) => `${mark.userId}@${mark.cursor}`), ['ana@c4', 'bo@c3', 'cy@elsewhere', 'li@c4'],
    'a batch of moved marks merges: the users it names move, the others stay')
  const merged = reads.value.get().reads
  reads.marksMoved([])
  t.equal(reads.value.get().reads, merged, 'an empty batch changes nothing')
  reads.replaceMarks([{ userId: 'bo', cursor: 'c4', readAt: '2026-01-01T00:00:02.000Z' }])
  t.same(reads.value.get().reads.map((mark) => mark.userId), ['bo'], 'an answer replaces them all')
})

// ---- offline storage ---------------------------------------------------------------------------

function persisted (storage: StorageLike, options: { maxBytes?: number, maxActivities?: number, page?: FakePage } = {}) {
  const clock = manualClock()
  const state = new PersistedState({
    persist: storage,
    scope: 'wss://app.example/ws',
    maxBytes: options.maxBytes ?? 256 * 1024,
    maxActivities: options.maxActivities ?? 50,
    timers: clock,
    document: () => options.page ?? null
  })
  return { clock, state }
}

const held = (n: number, povId = 'p1', message = '') => ({ cursor: `c${n}`, activity: activity(`a${n}`, povId, message) })
const pov = (activities: ReturnType<typeof held>[], extra: { readCursor?: string | null, pendingRead?: string } = {}) =>
  ({ cursor: activities.at(-1)?.cursor, readCursor: null, pendingRead: undefined, activities, ...extra })

t.test("the kept state is written once after a burst, or at once when the page hides, under the user's own key", async (t) => {
  const storage = new MemoryStorage()
  const page = new FakePage()
  const { clock, state } = persisted(storage, { page })
  state.open('ana')
  for (let n = 1; n <= 100; n++) state.set('p1', pov([held(n)]))
  t.equal(storage.writes, 0, 'nothing written during the burst')
  clock.advance(PERSIST_WRITE_DELAY)
  t.equal(storage.writes, 1, 'one write for the burst')
  t.same(storage.keys(), [`${PERSIST_KEY_PREFIX}${encodeURIComponent('wss://app.example/ws')}:ana`])
  state.set('p1', pov([held(101)], { pendingRead: 'c101' }))
  page.hide()
  t.equal(storage.writes, 2, 'hidden: written at once')

  const again = persisted(storage).state
  again.open('ana')
  t.same(again.get('p1'), pov([held(101)], { pendingRead: 'c101' }), 'a new instance (a reload) reads it back')
  again.open('li')
  t.equal(again.get('p1'), undefined, 'another user reads nothing of it')
})

t.test('bounded in bytes: the most recently saved PoVs keep their activities, the oldest lose theirs first, cursors and marks stay', async (t) => {
  const storage = new MemoryStorage()
  const maxBytes = 64 * 1024
  const { state } = persisted(storage, { maxBytes })
  state.open('ana')
  const long = 'x'.repeat(1000)
  for (let p = 0; p < 20; p++) {
    state.set(`p${p}`, pov(Array.from({ length: 50 }, (_, n) => held(n, `p${p}`, long)), { readCursor: 'c3' }))
  }
  state.flush()
  const text = storage.getItem(storage.keys()[0]!)!
  t.ok(text.length * 2 <= maxBytes, `${text.length * 2} bytes stored, at most ${maxBytes}`)
  const reloaded = persisted(storage).state
  reloaded.open('ana')
  t.ok(reloaded.get('p19')!.activities.length > 0, 'the newest PoV keeps activities')
  t.equal(reloaded.get('p19')!.activities.at(-1)!.cursor, 'c49', 'its newest ones')
  t.same(reloaded.get('p0'), { cursor: 'c49', readCursor: 'c3', pendingRead: undefined, activities: [] },
    'the oldest PoV keeps its cursor and mark, not its activities')
  const kept = Array.from({ length: 20 }, (_, p) => reloaded.get(`p${p}`)?.readCursor)
  t.same(kept, Array(20).fill('c3'), 'every PoV keeps its cursor and mark: they go last')
})

t.test(`at most ${MAX_PERSISTED_POVS} PoVs and the configured number of activities per PoV are kept`, async (t) => {
  const storage = new MemoryStorage()
  const { state } = persisted(storage, { maxActivities: 5 })
  state.open('ana')
  for (let p = 0; p < MAX_PERSISTED_POVS + 10; p++) state.set(`p${p}`, pov(Array.from({ length: 20 }, (_, n) => held(n, `p${p}`))))
  state.flush()
  const reloaded = persisted(storage, { maxActivities: 5 }).state
  reloaded.open('ana')
  t.equal(reloaded.get('p9'), undefined, 'the 10 least recently saved are gone')
  t.same(reloaded.get('p10')!.activities.map((h) => h.cursor), ['c15', 'c16', 'c17', 'c18', 'c19'], 'the newest 5 activities')
})

t.test('a full storage keeps the cursors and marks; one that keeps failing leaves the state in memory, unbroken', async (t) => {
  const storage = new MemoryStorage()
  storage.quota = 2000
  const { state } = persisted(storage)
  state.open('ana')
  state.set('p1', pov(Array.from({ length: 50 }, (_, n) => held(n, 'p1', 'y'.repeat(200))), { readCursor: 'c10', pendingRead: 'c20' }))
  t.doesNotThrow(() => state.flush(), 'a quota error is not thrown')
  const reloaded = persisted(storage).state
  reloaded.open('ana')
  t.same(reloaded.get('p1'), { cursor: 'c49', readCursor: 'c10', pendingRead: 'c20', activities: [] }, 'the second try kept what matters most')

  storage.quota = 10
  state.set('p1', pov([held(60)], { readCursor: 'c60' }))
  t.doesNotThrow(() => state.flush())
  t.same(state.get('p1')?.readCursor, 'c60', 'the state lives on in memory')
  const writes = storage.writes
  state.set('p1', pov([held(61)]))
  state.flush()
  t.equal(storage.writes, writes, 'and the broken storage is not tried again')
})

t.test('storage that refuses access, and stored text that is not ours, are survived', async (t) => {
  const refusing: StorageLike = {
    get length (): number { throw new DOMException('denied', 'SecurityError') },
    key () { throw new DOMException('denied', 'SecurityError') },
    getItem () { throw new DOMException('denied', 'SecurityError') },
    setItem () { throw new DOMException('denied', 'SecurityError') },
    removeItem () { throw new DOMException('denied', 'SecurityError') }
  }
  const { state } = persisted(refusing)
  t.doesNotThrow(() => {
    state.open('ana')
    state.set('p1', pov([held(1)]))
    state.flush()
  })
  t.same(state.get('p1')?.cursor, 'c1', 'kept in memory')
  t.doesNotThrow(() => clearPersistedRealtimeState(refusing), 'clearing it is no error either')

  const storage = new MemoryStorage()
  const key = `${PERSIST_KEY_PREFIX}${encodeURIComponent('wss://app.example/ws')}:ana`
  for (const junk of ['not json', '[]', '{"povs":7}', '{"povs":{"p1":"x","p2":{"cursor":5,"activities":[{"cursor":"c1","activity":{"id":"a1","povId":"other"}},7]}}}']) {
    storage.setItem(key, junk)
    const { state: reader } = persisted(storage)
    t.doesNotThrow(() => reader.open('ana'), `survives ${junk}`)
    const p2 = reader.get('p2')
    t.ok(p2 === undefined || (p2.cursor === undefined && p2.activities.length === 0), 'nothing malformed is taken in')
    t.equal(reader.get('p1'), undefined)
  }
})

t.test('clearPersistedRealtimeState removes every key of ours and what instances hold in memory, nothing else', async (t) => {
  const storage = new MemoryStorage()
  storage.setItem('the-app-own-key', 'kept')
  const { state } = persisted(storage)
  state.open('ana')
  state.set('p1', pov([held(1)]))
  state.flush()
  state.open('li')
  state.set('p1', pov([held(2)]))
  state.flush()
  t.equal(storage.keys().length, 3)
  clearPersistedRealtimeState(storage)
  t.same(storage.keys(), ['the-app-own-key'], "both users' keys are gone, the app's stays")
  t.equal(state.get('p1'), undefined, 'the instance forgot too')
  state.flush()
  t.same(storage.keys(), ['the-app-own-key'], 'and writes nothing back')
})
