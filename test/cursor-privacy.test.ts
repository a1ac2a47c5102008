/**
 * "Cursors reveal nothing about other PoVs" (PROTOCOL.md, Additions) with the in-process broker: a cursor is a
 * position in its own PoV, so a subscriber sees the same cursors whatever other PoVs receive, and a cursor of one PoV
 * is worth nothing for another. A PoV whose counter the broker forgot starts a new run that still orders after the old.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { InProcessBroker } from '../lib/in-process/index.js'
import { activity, startServer } from './helpers/server.js'

async function publish (app: FastifyInstance, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await app.broadcastActivity(activity(povId))).cursor)
  return cursors
}

/** A cursor's parts: the instance's epoch, the PoV's run, its number in the run (base 36), the tag. */
function partsOf (cursor: string): { epoch: string, gen: string, seq: number, tag: string } {
  const [epoch, gen, seq, tag, ...rest] = cursor.split('.')
  if (rest.length > 0 || tag === undefined) throw new Error(`not an in-process cursor: ${cursor}`)
  return { epoch: epoch!, gen: gen!, seq: parseInt(seq!, 36), tag }
}

t.test('a subscriber sees consecutive positions of its PoV, whatever other PoVs receive meanwhile', async (t) => {
  const server = await startServer(t)
  const quietWatcher = await server.connect({ claims: { userId: 'alice' } })
  const busyWatcher = await server.connect({ claims: { userId: 'bob' } })
  await quietWatcher.subscribe('quiet')
  await busyWatcher.subscribe('busy')
  // `quiet` gets its activities alone; `busy` gets each of its own between 37 of a PoV its watcher is refused.
  await publish(server.app, 'quiet', 5)
  for (let i = 0; i < 5; i++) {
    await publish(server.app, 'refused', 37)
    await publish(server.app, 'busy', 1)
  }
  const seen = async (client: typeof quietWatcher): Promise<string[]> => {
    const cursors: string[] = []
    for (let i = 0; i < 5; i++) cursors.push((await client.next('activity')).cursor as string)
    return cursors
  }
  const quiet = (await seen(quietWatcher)).map(partsOf)
  const busy = (await seen(busyWatcher)).map(partsOf)
  t.same(quiet.map((part) => part.seq), [1, 2, 3, 4, 5], 'the quiet PoV\'s cursors count its own activities')
  t.same(busy.map((part) => part.seq), [1, 2, 3, 4, 5], 'and so do the busy PoV\'s: the 185 others leave no gap')
  t.equal(new Set(busy.map((part) => part.gen)).size, 1, 'one run per PoV: the run does not move with other PoVs\' traffic')
  const shape = (cursor: string) => cursor.replace(/[A-Za-z0-9_-]+/g, (part) => `<${part.length}>`)
  t.same(busy.map(({ epoch, seq, tag }) => shape(`${epoch}.${seq}.${tag}`)), quiet.map(({ epoch, seq, tag }) => shape(`${epoch}.${seq}.${tag}`)),
    'apart from the run (when the PoV began), the two PoVs\' cursors have the same shape')
})

t.test('a cursor of one PoV is no cursor of another: a resume with it is recovered: false, a read mark refuses it', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const [p1] = await publish(server.app, 'p1', 1)
  await publish(server.app, 'p2', 1) // p2 has an activity at the same position as p1's
  const client = await server.connect()
  t.same(await client.subscribe('p2', p1), { type: 'subscribed', povId: 'p2', recovered: false, readCursor: null, unread: 1 })
  t.same(client.activities(), [], 'nothing replayed')
  await t.rejects(server.app.povRealtime.markRead('u1', 'p2', p1!), { code: 'POV_REALTIME_INVALID_CURSOR' })
})

t.test('a PoV whose counter was forgotten starts a new run that orders after the old one', async (t) => {
  const broker = new InProcessBroker({ maxPovs: 2 })
  const server = await startServer(t, { readReceipts: true, broker })
  const [, a2] = await publish(server.app, 'a', 2)
  await server.app.povRealtime.markRead('u1', 'a', a2!)
  await publish(server.app, 'b', 1)
  await publish(server.app, 'c', 1) // a is now the least recently published of three: forgotten
  const [a3] = await publish(server.app, 'a', 1)
  t.equal(partsOf(a3!).seq, 1, 'the new run counts from 1 again')
  t.not(partsOf(a3!).gen, partsOf(a2!).gen, 'in a new run')
  t.same(await server.app.povRealtime.unreadCounts('u1', ['a']), { a: { readCursor: a2, unread: 1 } },
    'the new activity counts as after the mark')
  t.equal(await server.app.povRealtime.markRead('u1', 'a', a3!), true, 'a mark moves forward into the new run')
  t.equal(await server.app.povRealtime.markRead('u1', 'a', a2!), false, 'and never back into the old one')

  const client = await server.connect()
  t.same(await client.subscribe('a', a2), { type: 'subscribed', povId: 'a', recovered: false, readCursor: a3, unread: 0 },
    'a resume from before the forgetting cannot be proven complete')
  const other = await server.connect()
  t.same(await other.subscribe('a', a3), { type: 'subscribed', povId: 'a', recovered: true, readCursor: a3, unread: 0 })
})
