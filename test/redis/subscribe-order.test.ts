/**
 * Presence and read receipts on together, with the Redis broker (PROTOCOL.md, "Messages", "Presence" and "Read
 * receipts"): a subscribe is answered with the replay (when resuming), then `subscribed` with the read state, then
 * the `presence` snapshot; every other message of the PoV comes after them. Checked on a quiet PoV and on a busy one,
 * where other instances publish, move marks, join, leave and type while clients subscribe.
 */
import type { FastifyInstance } from 'fastify'
import type { Message, TestClient } from '../helpers/client.js'
import { member } from '../helpers/presence.js'
import { startRedisInstances } from '../helpers/redis-instances.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { activity, sleep, waitFor } from '../helpers/server.js'
import { connectAs } from '../helpers/members.js'

const BOTH = { presence: true, readReceipts: true } as const

/** The messages `client` received about `povId` (every server message that names one), in order. */
const aboutPov = (client: TestClient, povId: string): Message[] => client.messages.filter((m) =>
  m.type === 'activity' ? (m.data as { povId: string }).povId === povId : m.povId === povId)

/** Stream order of the Redis broker's cursors (`<epoch>.<ms>-<seq>`). */
function streamPosition (cursor: string): [bigint, bigint] {
  const [ms, seq] = cursor.split('.')[1]!.split('-')
  return [BigInt(ms!), BigInt(seq!)]
}
const isAfter = (a: string, b: string) => {
  const [aMs, aSeq] = streamPosition(a)
  const [bMs, bSeq] = streamPosition(b)
  return aMs === bMs ? aSeq > bSeq : aMs > bMs
}

/**
 * What, in the messages a client received about `povId` after one subscribe, breaks the documented order: before
 * `subscribed` only the replay (when resuming); `presence` right after `subscribed`; activities each once, in order.
 */
function orderProblems (messages: Message[], resuming: boolean): string[] {
  const problems: string[] = []
  const answer = messages.findIndex((m) => m.type === 'subscribed')
  if (answer === -1) return ['no subscribed']
  for (const early of messages.slice(0, answer)) {
    if (!(resuming && early.type === 'activity')) problems.push(`${early.type} before subscribed`)
  }
  if (messages[answer + 1]?.type !== 'presence') {
    problems.push(`${messages[answer + 1]?.type ?? 'nothing'} right after subscribed, not presence`)
  }
  if (messages.filter((m) => m.type === 'subscribed' || m.type === 'presence').length !== 2) {
    problems.push('more than one subscribed or presence')
  }
  let last: string | undefined
  for (const { cursor } of messages.filter((m) => m.type === 'activity')) {
    if (last !== undefined && !isAfter(cursor as string, last)) problems.push(`activity ${String(cursor)} after ${last}`)
    last = cursor as string
  }
  return problems
}

/** Publishes `count` activities to `povId`; resolves their cursors in publish order. */
async function publish (app: FastifyInstance, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await app.broadcastActivity(activity(povId))).cursor)
  return cursors
}

testOnEachTarget('a subscribe is answered subscribed (with readCursor and unread), then presence, then nothing out of order', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, BOTH)
  const cursors = await publish(a!.app, 'p1', 4)
  await a!.app.povRealtime.markRead('u1', 'p1', cursors[1]!)
  const colleague = await connectAs(a!, 'u2')
  await colleague.subscribe('p1')

  const client = await connectAs(b!, 'u1')
  client.send({ type: 'subscribe', povId: 'p1' })
  await client.next('presence')
  t.same(aboutPov(client, 'p1'), [
    { type: 'subscribed', povId: 'p1', readCursor: cursors[1], unread: 2 },
    { type: 'presence', povId: 'p1', members: [member('u2'), member('u1')] }
  ], 'exactly these two, in this order')

  const resumed = await connectAs(b!, 'u1')
  resumed.send({ type: 'subscribe', povId: 'p1', since: cursors[2] })
  await resumed.next('presence')
  t.same(aboutPov(resumed, 'p1').map((m) => m.type === 'activity' ? m.cursor : m.type),
    [cursors[3], 'subscribed', 'presence'], 'resuming: the replay, subscribed, presence')
  t.match(aboutPov(resumed, 'p1')[1], { type: 'subscribed', recovered: true, readCursor: cursors[1], unread: 2 })

  const seen = client.messages.length
  client.send({ type: 'subscribe', povId: 'p1' })
  await client.next('presence')
  t.same(client.messages.slice(seen), [
    { type: 'subscribed', povId: 'p1', readCursor: cursors[1], unread: 2 },
    { type: 'presence', povId: 'p1', members: [member('u2'), member('u1')] }
  ], 'a repeated subscribe: the same two again')
})

testOnEachTarget('on a busy PoV (activities, marks, joins, leaves and typing from other instances), every subscribe keeps the order', async (t, redis) => {
  const [a, b, c] = await startRedisInstances(t, redis, 3, BOTH, {})
  const [first] = await publish(a!.app, 'busy', 1)
  const typist = await connectAs(c!, 'typist')
  await typist.subscribe('busy')
  const reader = await connectAs(c!, 'reader')
  await reader.subscribe('busy')

  const state = { running: true }
  const traffic = [
    (async () => { // activities from A, each read at once by a user on C (a read event per activity)
      while (state.running) {
        const { cursor } = await a!.app.broadcastActivity(activity('busy'))
        reader.send({ type: 'read', povId: 'busy', cursor })
        await sleep(3)
      }
    })(),
    (async () => { // marks moved from a route-like call on C
      while (state.running) {
        const { cursor } = await c!.app.broadcastActivity(activity('busy'))
        await c!.app.povRealtime.markRead('marker', 'busy', cursor)
        await sleep(5)
      }
    })(),
    (async () => { // members coming and going on A and C, and typing
      for (let i = 0; state.running; i++) {
        const visitor = await connectAs(i % 2 === 0 ? a! : c!, `visitor-${i % 5}`)
        await visitor.subscribe('busy')
        typist.send({ type: 'typing', povId: 'busy', typing: i % 2 === 0 })
        await sleep(10)
        visitor.terminate()
      }
    })()
  ]

  const subscribers: Array<{ client: TestClient, resuming: boolean }> = []
  for (let i = 0; i < 24; i++) {
    const client = await connectAs(b!, `u${i % 3}`)
    const resuming = i % 3 === 0
    client.send({ type: 'subscribe', povId: 'busy', ...(resuming && { since: first }) })
    subscribers.push({ client, resuming })
    await sleep(i % 4 === 0 ? 0 : 15)
  }
  for (const { client } of subscribers) await client.next('presence', 5000)
  await sleep(300)
  state.running = false
  await Promise.all(traffic)

  let activities = 0
  let reads = 0
  for (const [i, { client, resuming }] of subscribers.entries()) {
    const messages = aboutPov(client, 'busy')
    activities += messages.filter((m) => m.type === 'activity').length
    // Marks that moved in one window come as one reads frame; each counts.
    reads += messages.reduce((sum, m) => sum + (m.type === 'read' ? 1 : m.type === 'reads' ? (m.reads as unknown[]).length : 0), 0)
    t.same(orderProblems(messages, resuming), [], `subscriber ${i}${resuming ? ' (resuming)' : ''}: nothing out of order`)
  }
  t.ok(activities > 24 && reads > 24, `the PoV was busy meanwhile (${activities} activities, ${reads} marks told)`)
  await waitFor(() => b!.app.povRealtime.stats().subscriptions === 24)
})
