/**
 * The Redis broker's read marks, at the broker seam: brokers on a real Redis, each with a sink that records the marks
 * it would hand the plugin. Marks only move forward, only to a cursor of the PoV, reach every instance watching the
 * PoV (the one that moved it included, once), and outlive the history window and the instance.
 */
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { startBroker, type StartedBroker } from '../helpers/redis-broker-parts.js'
import { sleep, waitFor } from '../helpers/server.js'
import type { ReadMark } from '../../types/messages.js'

const readAt = () => new Date().toISOString()

/** Publishes `count` activities on `povId` from `from`; resolves their cursors. */
async function publish (from: StartedBroker, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await from.broker.publish(povId, JSON.stringify({ id: `${povId}-${i}` }))).cursor)
  return cursors
}

testOnEachTarget('a mark only moves forward: an older or equal cursor changes nothing', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const [c1, c2, c3] = await publish(a, 'p1', 3)

  const at = readAt()
  t.same(await a.store.markRead('p1', 'ana', c2!, at), { userId: 'ana', cursor: c2, readAt: at }, 'the first mark')
  t.equal(await a.store.markRead('p1', 'ana', c1!, readAt()), null, 'an older cursor: no move')
  t.equal(await a.store.markRead('p1', 'ana', c2!, readAt()), null, 'the same cursor: no move')
  t.same(await a.store.markOf('p1', 'ana'), { userId: 'ana', cursor: c2, readAt: at }, 'the mark (and its time) stayed')
  t.match(await a.store.markRead('p1', 'ana', c3!, readAt()), { cursor: c3 }, 'a newer cursor moves it')
  t.equal(await a.store.markOf('p1', 'li'), null, 'a user without a mark')
  t.equal(await a.store.markOf('p-none', 'ana'), null, 'a PoV without marks')
  t.same(await a.store.reads('p-none'), [])
})

testOnEachTarget('a cursor that is not one of the PoV\'s is refused with POV_REALTIME_INVALID_CURSOR and changes nothing', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const [c1, c2] = await publish(a, 'p1', 2)
  const [other] = await publish(a, 'p2', 1)
  await a.store.markRead('p1', 'ana', c1!, readAt())
  const [epoch, id] = [c2!.slice(0, c2!.indexOf('.')), c2!.slice(c2!.indexOf('.') + 1)]
  const [ms, seq] = id.split('-')
  const refused = {
    malformed: 'not-a-cursor',
    'of another PoV': other!,
    'newer than the latest activity (same epoch)': `${epoch}.${ms}-${Number(seq) + 1}`,
    'far in the future': `${epoch}.${Number(ms) + 1000}-0`,
    'of an unknown epoch': `zzzz.${id}`,
    'an in-process broker cursor': 'abcdef.1f'
  }
  for (const [what, cursor] of Object.entries(refused)) {
    await t.rejects(a.store.markRead('p1', 'ana', cursor, readAt()), { code: 'POV_REALTIME_INVALID_CURSOR', statusCode: 400 }, what)
  }
  await t.rejects(a.store.markRead('p-never', 'ana', c1!, readAt()), { code: 'POV_REALTIME_INVALID_CURSOR' },
    'a PoV that has no activity has no cursor')
  t.match(await a.store.markOf('p1', 'ana'), { cursor: c1 }, 'the mark did not move')
  t.same(a.reads.marks.map((mark) => mark.cursor), [c1], 'only the valid mark reached the sink')
})

testOnEachTarget('a moved mark reaches every instance watching the PoV, the one that moved it once; reads() agrees everywhere', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const c = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  await a.broker.watch('p1')
  await b.broker.watch('p1')
  const [c1, c2] = await publish(a, 'p1', 2)

  const mark = await a.store.markRead('p1', 'ana', c1!, readAt())
  t.same(a.reads.marks, [{ povId: 'p1', ...mark }], 'a\'s sink had it by the time markRead resolved')
  await waitFor(() => b.reads.marks.length === 1, 5000, 'the mark on b')
  t.same(b.reads.marks, [{ povId: 'p1', ...mark }])
  await b.store.markRead('p1', 'li', c2!, readAt())
  await b.store.markRead('p1', 'ana', c1!, readAt()) // not newer: no event
  await waitFor(() => a.reads.marks.length === 2, 5000, 'li\'s mark on a')
  await sleep(200)
  t.equal(a.reads.marks.length, 2, 'a got each moved mark once')
  t.equal(b.reads.marks.length, 2, 'b got each moved mark once')
  t.same(c.reads.marks, [], 'c does not watch p1: no event')

  const byUser = (marks: ReadMark[]) => [...marks].sort((x, y) => x.userId.localeCompare(y.userId))
  const expected = byUser(await a.store.reads('p1'))
  t.same(expected.map((m) => [m.userId, m.cursor]), [['ana', c1], ['li', c2]])
  t.same(byUser(await c.store.reads('p1')), expected, 'an instance that does not watch p1 reads the same marks')

  b.broker.unwatch('p1')
  await a.store.markRead('p1', 'ana', c2!, readAt())
  await sleep(200)
  t.equal(b.reads.marks.length, 2, 'no event after unwatch')
})

testOnEachTarget('marks outlive the instance that stored them, and the history window', async (t, redis) => {
  const history = { size: 100, ttl: 300 }
  const first = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, history })
  const [c1] = await publish(first, 'p1', 1)
  const mark = await first.store.markRead('p1', 'ana', c1!, readAt())
  await first.broker.close()

  await sleep(history.ttl + 100) // the activity has left the window
  const next = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, history })
  t.same(await next.store.markOf('p1', 'ana'), mark, 'a broker started later reads the mark')
  t.same(await next.store.reads('p1'), [mark])
  t.equal(await next.store.unreadAfter('p1', c1!), 0, 'nothing unread after it')
  t.equal(await next.store.markRead('p1', 'ana', c1!, readAt()), null, 'the same cursor is still valid (no move)')
  const ttl = await redis.client.pttl(`${redis.keyPrefix}{p1}:r`)
  t.ok(ttl > 29 * 24 * 3600_000 && ttl <= 30 * 24 * 3600_000, `the marks expire 30 days after the last move (${ttl} ms)`)
})

testOnEachTarget('unreadAfter: the activities the window holds after the mark; all of them without one; null without history', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, history: { size: 5, ttl: 60_000 } })
  t.equal(await a.store.unreadAfter('p1', null), 0, 'a PoV without activity')
  const cursors = await publish(a, 'p1', 8) // the window keeps the last 5
  t.equal(await a.store.unreadAfter('p1', null), 5, 'no mark: the whole window')
  t.equal(await a.store.unreadAfter('p1', cursors[7]!), 0, 'marked up to the newest')
  t.equal(await a.store.unreadAfter('p1', cursors[5]!), 2)
  t.equal(await a.store.unreadAfter('p1', cursors[3]!), 4, 'the oldest in the window')
  t.equal(await a.store.unreadAfter('p1', cursors[1]!), 5, 'a mark the window has dropped: the whole window')
  t.equal(await a.store.unreadAfter('p1', 'not-a-cursor'), 5, 'an unknown cursor: the whole window')

  const noHistory = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, history: false })
  t.equal(await noHistory.store.unreadAfter('p1', null), null, 'history off: null')
  t.equal(await noHistory.store.unreadAfter('p1', cursors[5]!), null)
})

testOnEachTarget('a history Redis lost: the old mark counts as older than any cursor of the new one, and unread counts it all', async (t, redis) => {
  const a = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix })
  const old = await publish(a, 'p1', 3)
  await a.store.markRead('p1', 'ana', old[2]!, readAt())
  // Redis loses the PoV's history (evicted, flushed): its next activity starts a new epoch.
  await redis.client.del(`${redis.keyPrefix}{p1}:h`, `${redis.keyPrefix}{p1}:m`)
  const fresh = await publish(a, 'p1', 2)
  t.not(fresh[0]!.split('.')[0], old[0]!.split('.')[0], 'a new epoch')

  t.equal(await a.store.unreadAfter('p1', old[2]!), 2, 'a mark of the old epoch: everything in the window is unread')
  await t.rejects(a.store.markRead('p1', 'ana', old[2]!, readAt()), { code: 'POV_REALTIME_INVALID_CURSOR' },
    'a cursor of the old epoch is no longer one of the PoV\'s')
  t.match(await a.store.markRead('p1', 'ana', fresh[0]!, readAt()), { cursor: fresh[0] }, 'the first new cursor moves the old mark')
})
