/**
 * Shutdown under load (hardening), beyond the quiet shutdown of shutdown.test.ts: `fastify.close()` while activities are
 * broadcast to hundreds of sockets a few per millisecond, none of them awaited before the next. Every socket gets
 * 1001; every broadcast either was published and reached every socket of its PoV before that 1001, or rejects with
 * POV_REALTIME_CLOSED and reached no one; close finishes in bounded time; nothing is left: no counter, no timer, no
 * handle (with presence and read receipts on too, whose timers must not outlive the close).
 */
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import type { PovRealtimeOptions } from '../../index.js'
import { activeResources, trackResources } from '../helpers/resources.js'
import { activity, sleep, socketToken, startServer, waitFor } from '../helpers/server.js'
import { closed } from '../helpers/socket-waits.js'

const SOCKETS = 300
const POVS = 30
/** Broadcasts issued on each tick of the load loop (a 1 ms interval: a few per millisecond). */
const PER_TICK = 5
/** How long activities flow before `fastify.close()` is called. */
const LOAD_BEFORE_CLOSE_MS = 300
/** `fastify.close()` must finish within this (its grace period for clients to answer the 1001 is 1 s). */
const CLOSE_BOUND_MS = 5000

interface Broadcast {
  readonly id: string
  readonly povId: string
  readonly issuedAt: number
  /** Issued once `fastify.close()` had been called. */
  readonly duringClose: boolean
  outcome: 'pending' | 'published' | 'refused' | Error
}

async function closeUnderLoad (t: Test, options: Partial<PovRealtimeOptions>, chatty: boolean): Promise<void> {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const resourcesBefore = activeResources()
  // Everything made from here on, the server included, must be gone after the close.
  const tracked = trackResources()
  tracked.enable()
  t.teardown(() => tracked.disable())

  const server = await startServer(t, options)
  const clients = await Promise.all(Array.from({ length: SOCKETS }, (_, i) => {
    const userId = `u${i}`
    return server.connect({ token: socketToken({ userId, sub: userId, email: `${userId}@example.com` }) })
  }))
  const povOf = (i: number): string => `p${i % POVS}`
  await Promise.all(clients.map((client, i) => client.subscribe(povOf(i))))
  t.match(server.app.povRealtime.stats(), { connections: SOCKETS, subscriptions: SOCKETS, povs: POVS })
  const closedAt = clients.map(async (client) => { await closed(client, { within: 15_000 }); return performance.now() })

  const broadcasts: Broadcast[] = []
  let closeCalled = false
  const issue = (): void => {
    const n = broadcasts.length
    const broadcast: Broadcast = { id: `b${n}`, povId: `p${n % POVS}`, issuedAt: performance.now(), duringClose: closeCalled, outcome: 'pending' }
    broadcasts.push(broadcast)
    server.app.broadcastActivity(activity(broadcast.povId, { id: broadcast.id })).then(
      () => { broadcast.outcome = 'published' },
      (err: { code?: string }) => { broadcast.outcome = err.code === 'POV_REALTIME_CLOSED' ? 'refused' : err as Error }
    )
  }
  /** With presence and read receipts on: one socket a tick types (or stops) and marks its latest activity read. */
  let tick = 0
  const chatter = (): void => {
    const client = clients[tick % SOCKETS]!
    if (client.ws.readyState !== client.ws.OPEN) return
    const povId = povOf(tick % SOCKETS)
    client.send({ type: 'typing', povId, typing: tick % (2 * SOCKETS) < SOCKETS })
    const latest = client.messages.findLast((message) => message.type === 'activity')
    if (latest) client.send({ type: 'read', povId, cursor: latest.cursor })
  }
  const load = setInterval(() => {
    for (let i = 0; i < PER_TICK; i++) issue()
    if (chatty) chatter()
    tick++
  }, 1)

  await sleep(LOAD_BEFORE_CLOSE_MS)
  closeCalled = true
  const started = performance.now()
  await server.app.close()
  const took = performance.now() - started
  await sleep(5) // a few more broadcasts, after the close
  clearInterval(load)

  const codes = await Promise.all(clients.map(async (client) => (await closed(client, { within: 15_000 })).code))
  t.equal(codes.filter((code) => code === 1001).length, SOCKETS, 'every socket got 1001')
  await waitFor(() => broadcasts.every((broadcast) => broadcast.outcome !== 'pending'), 5000, 'every broadcast to settle')
  const published = broadcasts.filter((broadcast) => broadcast.outcome === 'published')
  const refused = broadcasts.filter((broadcast) => broadcast.outcome === 'refused')
  t.same(broadcasts.filter((broadcast) => broadcast.outcome instanceof Error), [], 'no broadcast failed otherwise')
  t.comment(`${broadcasts.length} broadcasts in ${LOAD_BEFORE_CLOSE_MS} ms and during the close: ${published.length} published ` +
    `(${published.filter((broadcast) => broadcast.duringClose).length} of them after close() was called), ${refused.length} refused`)
  t.comment(`fastify.close() with ${SOCKETS} sockets under load took ${took.toFixed(0)} ms`)
  t.ok(took < CLOSE_BOUND_MS, `close finished in bounded time (${took.toFixed(0)} ms)`)
  t.ok(broadcasts.filter((broadcast) => !broadcast.duringClose).every((broadcast) => broadcast.outcome === 'published'),
    'every broadcast issued before close() was published')
  const firstClose = Math.min(...await Promise.all(closedAt))
  const afterFirstClose = broadcasts.filter((broadcast) => broadcast.issuedAt > firstClose)
  t.ok(afterFirstClose.length > 0 && afterFirstClose.every((broadcast) => broadcast.outcome === 'refused'),
    `the ${afterFirstClose.length} broadcasts issued once a client had seen its 1001 rejected with POV_REALTIME_CLOSED`)

  if (chatty) {
    const got = (type: string): number => clients.filter((client) => client.messages.some((message) => message.type === type)).length
    // Marks that moved together come as one reads frame, a lone one as a read event.
    const marks = clients.filter((client) => client.messages.some((message) => message.type === 'read' || message.type === 'reads')).length
    t.ok(got('typing') > 0 && marks > 0 && got('presence_diff') > 0,
      `presence and read receipts were at work when the close came (${got('typing')} sockets saw typing, ${marks} moved marks, ${got('presence_diff')} a presence diff)`)
  }
  const wrong = clients.flatMap((client, i) => {
    const expected = published.filter((broadcast) => broadcast.povId === povOf(i)).map((broadcast) => broadcast.id)
    const received = client.activities().map((data) => data.id)
    return JSON.stringify(received) === JSON.stringify(expected) ? [] : [{ client: i, expected: expected.length, received: received.length }]
  })
  t.same(wrong, [], 'every socket got every published activity of its PoV, in order, and none that was refused')
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0, presenceMembers: 0 }, 'the counters are back to 0')
  t.equal(server.app.povRealtime.stats().closed['1001'], SOCKETS, 'every 1001 is counted')
  t.same(unhandled, [], 'no unhandled rejection')

  // A socket's last handles go a turn or two after its close event; destroy hooks come a turn after the fact.
  await waitFor(() => [...tracked.live.values()].every((type) => type === 'Timeout'), 5000, 'the TCP handles to be released')
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve))
  tracked.disable()
  t.same([...tracked.live.values()], [], 'no timer, socket or server made since the start is left (unref\'d timers included)')
  t.same(activeResources(), resourcesBefore, 'the event loop holds what it held before the server started')
}

t.test('fastify.close() while broadcasting to 300 sockets: every socket gets 1001, nothing published is lost, later broadcasts are refused', async (t) => {
  await closeUnderLoad(t, {}, false)
})

t.test('the same with presence and read receipts on, clients typing and marking reads: their timers do not outlive the close', async (t) => {
  await closeUnderLoad(t, { presence: true, readReceipts: true }, true)
})
