import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Broker, BrokerStartContext, Replay } from '../index.js'
import { MAX_PENDING_DURING_REPLAY } from '../lib/constants.js'
import { InProcessBroker } from '../lib/in-process/index.js'
import type { Message, TestClient } from './helpers/client.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

/** Publishes `count` activities to `povId`, one after the other; resolves their cursors in publish order. */
async function publish (app: FastifyInstance, povId: string, count: number): Promise<string[]> {
  const cursors: string[] = []
  for (let i = 0; i < count; i++) cursors.push((await app.broadcastActivity(activity(povId))).cursor)
  return cursors
}

/** Everything the client received for `povId` up to and including its `subscribed`, and the activity cursors after it. */
function splitAtSubscribed (client: TestClient, povId: string): { before: Message[], subscribed: Message | undefined, cursorsAfter: string[] } {
  const index = client.messages.findIndex((m) => m.type === 'subscribed' && m.povId === povId)
  const before = index === -1 ? client.messages : client.messages.slice(0, index)
  const after = index === -1 ? [] : client.messages.slice(index + 1)
  return {
    before,
    subscribed: client.messages[index],
    cursorsAfter: after.filter((m) => m.type === 'activity').map((m) => m.cursor as string)
  }
}

/**
 * The in-process broker with a `replay` that waits for the test to let it go: `'before'` reading the history
 * (so live activities published meanwhile are both in the replay and delivered live), or `'after'` (so they are
 * delivered live only). Everything else is the real broker.
 */
class HeldReplayBroker implements Broker {
  readonly #inner: Broker = new InProcessBroker()
  readonly #hold: 'before' | 'after'
  readonly #released: Promise<void>
  /** Resolves when a replay has started and is being held. */
  readonly replayHeld: Promise<void>
  #onHeld: () => void = () => {}
  release: () => void = () => {}

  constructor (hold: 'before' | 'after') {
    this.#hold = hold
    this.#released = new Promise((resolve) => { this.release = resolve })
    this.replayHeld = new Promise((resolve) => { this.#onHeld = resolve })
  }

  start (context: BrokerStartContext) { return this.#inner.start(context) }
  publish (povId: string, activityJson: string) { return this.#inner.publish(povId, activityJson) }
  watch (povId: string) { return this.#inner.watch(povId) }
  unwatch (povId: string) { return this.#inner.unwatch(povId) }
  close () { return this.#inner.close() }

  async replay (povId: string, since: string): Promise<Replay> {
    this.#onHeld()
    if (this.#hold === 'before') await this.#released
    const replay = await this.#inner.replay(povId, since)
    if (this.#hold === 'after') await this.#released
    return replay
  }
}

t.test('a resume replays exactly the missed activities, oldest first, then subscribed with recovered: true', async (t) => {
  const server = await startServer(t)
  const first = await server.connect()
  await first.subscribe('p1')
  const [seen] = await publish(server.app, 'p1', 1)
  t.equal((await first.next('activity')).cursor, seen)
  first.close()
  await closed(first)

  await publish(server.app, 'other', 2) // another PoV's activities are not part of p1's replay
  const missed = await publish(server.app, 'p1', 3)
  const client = await server.connect()
  t.same(await client.subscribe('p1', seen), { type: 'subscribed', povId: 'p1', recovered: true })
  const { before } = splitAtSubscribed(client, 'p1')
  t.same(before.map((m) => m.type), ['activity', 'activity', 'activity'], 'only the missed activities come before subscribed')
  t.same(before.map((m) => m.cursor), missed, 'exactly the missed ones, oldest first')
  t.same(before.map((m) => (m.data as { povId: string }).povId), ['p1', 'p1', 'p1'])

  const [live] = await publish(server.app, 'p1', 1)
  t.equal((await client.next('activity')).cursor, live, 'then live activities follow')
})

t.test('a resume from the latest cursor replays nothing and is recovered', async (t) => {
  const server = await startServer(t)
  const cursors = await publish(server.app, 'p1', 3)
  const client = await server.connect()
  t.same(await client.subscribe('p1', cursors.at(-1)), { type: 'subscribed', povId: 'p1', recovered: true })
  t.same(client.activities(), [])
})

t.test('a resume is recovered: false, with no replay, when the window has dropped some of the gap', async (t) => {
  t.test('by size', async (t) => {
    const server = await startServer(t, { history: { size: 3, ttl: 60_000 } })
    const [since] = await publish(server.app, 'p1', 1)
    await publish(server.app, 'p1', 4)
    const client = await server.connect()
    t.same(await client.subscribe('p1', since), { type: 'subscribed', povId: 'p1', recovered: false })
    t.same(client.activities(), [], 'a partial gap is not replayed')
    const [live] = await publish(server.app, 'p1', 1)
    t.equal((await client.next('activity')).cursor, live, 'the subscription is live all the same')
  })

  t.test('by size, with exactly the window missed', async (t) => {
    const server = await startServer(t, { history: { size: 3, ttl: 60_000 } })
    const [since] = await publish(server.app, 'p1', 1)
    const missed = await publish(server.app, 'p1', 3)
    const client = await server.connect()
    t.same(await client.subscribe('p1', since), { type: 'subscribed', povId: 'p1', recovered: true })
    t.same(splitAtSubscribed(client, 'p1').before.map((m) => m.cursor), missed)
  })

  t.test('by age', async (t) => {
    const server = await startServer(t, { history: { size: 100, ttl: 300 } })
    const [since] = await publish(server.app, 'p1', 2)
    await sleep(600)
    const client = await server.connect()
    t.same(await client.subscribe('p1', since), { type: 'subscribed', povId: 'p1', recovered: false })
    t.same(client.activities(), [])
  })
})

t.test('a cursor from before a server restart is recovered: false', async (t) => {
  const before = await startServer(t)
  const [since] = await publish(before.app, 'p1', 1)
  await before.app.close()
  const after = await startServer(t) // a new instance: a new epoch, an empty history
  await publish(after.app, 'p1', 3)
  const client = await after.connect()
  t.same(await client.subscribe('p1', since), { type: 'subscribed', povId: 'p1', recovered: false })
  t.same(client.activities(), [])
})

t.test('a garbage cursor, a forged one or one of another PoV is recovered: false', async (t) => {
  const server = await startServer(t)
  const [real] = await publish(server.app, 'p1', 2)
  const [epoch, gen, seq, tag] = real!.split('.') as [string, string, string, string]
  const forgedTag = `${tag.slice(0, -1)}${tag.endsWith('A') ? 'B' : 'A'}`
  const next = (parseInt(seq, 36) + 1).toString(36)
  const garbage = ['garbage', '0', 'a.b.c', 'a.b.c.d', `${epoch}.zzzzzz`, `${epoch}.`, `${epoch}.-1`, '.1', `x${real}`,
    `${epoch}.${gen}.${seq}`, `${epoch}.${seq}.${tag}`, `${epoch}.${gen}.${seq}.${forgedTag}`, `${epoch}.${gen}.${next}.${tag}`,
    `${epoch}.${(parseInt(gen, 36) + 1).toString(36)}.${seq}.${tag}`, `${epoch}.${gen}.-${seq}.${tag}`, `${real}.${tag}`,
    real!] // p1's own cursor, given for another PoV
  const client = await server.connect()
  for (const since of garbage) {
    t.same(await client.subscribe(`p-${garbage.indexOf(since)}`, since),
      { type: 'subscribed', povId: `p-${garbage.indexOf(since)}`, recovered: false }, since)
  }
  t.same(client.activities(), [])
  // On p1 itself, where its real cursor resumes: one whose tag does not match what it names is refused all the same.
  for (const since of [`${epoch}.${gen}.${seq}.${forgedTag}`, `${epoch}.${gen}.${next}.${tag}`]) {
    const resumer = await server.connect()
    t.same(await resumer.subscribe('p1', since), { type: 'subscribed', povId: 'p1', recovered: false }, `p1 from ${since}`)
    t.same(resumer.activities(), [], 'and nothing is replayed')
  }
  const genuine = await server.connect()
  t.match(await genuine.subscribe('p1', real), { type: 'subscribed', povId: 'p1', recovered: true }, 'while its real cursor resumes')
})

t.test('with history: false every resume is recovered: false', async (t) => {
  const server = await startServer(t, { history: false })
  const cursors = await publish(server.app, 'p1', 3)
  const client = await server.connect()
  t.same(await client.subscribe('p1', cursors[0]), { type: 'subscribed', povId: 'p1', recovered: false })
  t.same(client.activities(), [])
  const [live] = await publish(server.app, 'p1', 1)
  t.equal((await client.next('activity')).cursor, live, 'live delivery still works')
})

for (const hold of ['before', 'after'] as const) {
  t.test(`activities published while a replay is under way (held ${hold} reading history) arrive exactly once, in order`, async (t) => {
    const broker = new HeldReplayBroker(hold)
    const server = await startServer(t, { broker })
    const [since] = await publish(server.app, 'p1', 1)
    const missed = await publish(server.app, 'p1', 3)
    const client = await server.connect()
    const subscribed = client.subscribe('p1', since)
    await broker.replayHeld
    const duringReplay = await publish(server.app, 'p1', 5)
    broker.release()
    t.same(await subscribed, { type: 'subscribed', povId: 'p1', recovered: true })
    const after = await publish(server.app, 'p1', 2)
    await client.next((m) => m.type === 'activity' && m.cursor === after.at(-1), 5000)
    const received = client.messages.filter((m) => m.type === 'activity').map((m) => m.cursor)
    t.same(received, [...missed, ...duringReplay, ...after], 'each once, in publish order')
    t.same(splitAtSubscribed(client, 'p1').before.map((m) => m.cursor), hold === 'before' ? [...missed, ...duringReplay] : missed,
      'the replay holds what the history held when it was read')
  })
}

t.test('a resume that cannot be recovered still delivers, once, what was published while it was read', async (t) => {
  const broker = new HeldReplayBroker('before')
  const server = await startServer(t, { broker, history: { size: 3, ttl: 60_000 } })
  const [since] = await publish(server.app, 'p1', 1)
  const client = await server.connect()
  const subscribed = client.subscribe('p1', since)
  await broker.replayHeld
  const during = await publish(server.app, 'p1', 5) // pushes the gap out of the window
  broker.release()
  t.same(await subscribed, { type: 'subscribed', povId: 'p1', recovered: false })
  const live = await publish(server.app, 'p1', 1)
  await client.next((m) => m.type === 'activity' && m.cursor === live[0], 5000)
  t.same(splitAtSubscribed(client, 'p1').before, [], 'no partial replay')
  t.same(client.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), [...during, ...live])
})

t.test('a resume and a plain subscribe on another socket both see each activity once', async (t) => {
  const broker = new HeldReplayBroker('before')
  const server = await startServer(t, { broker })
  const [since] = await publish(server.app, 'p1', 1)
  const plain = await server.connect({ claims: { userId: 'u2' } })
  await plain.subscribe('p1')
  const resuming = await server.connect()
  const subscribed = resuming.subscribe('p1', since)
  await broker.replayHeld
  const during = await publish(server.app, 'p1', 3)
  broker.release()
  await subscribed
  const live = await publish(server.app, 'p1', 1)
  for (const client of [plain, resuming]) {
    await client.next((m) => m.type === 'activity' && m.cursor === live[0], 5000)
  }
  t.same(plain.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), [...during, ...live])
  t.same(resuming.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), [...during, ...live])
})

t.test('a resume whose replay is slow is cut as a slow consumer (4008) once more activities wait for it than it may hold', async (t) => {
  const broker = new HeldReplayBroker('after')
  const server = await startServer(t, { broker })
  const [since] = await publish(server.app, 'p1', 1)
  const plain = await server.connect({ claims: { userId: 'u2' } })
  await plain.subscribe('p1')
  const resuming = await server.connect()
  resuming.send({ type: 'subscribe', povId: 'p1', since })
  await broker.replayHeld
  // Exactly the bound is held (published in bursts the other subscriber keeps up with)…
  let held = 0
  while (held < MAX_PENDING_DURING_REPLAY) {
    await server.app.broadcastActivity(activity('p1'))
    if (++held % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await sleep(50)
  t.equal(resuming.ws.readyState, resuming.ws.OPEN, `${MAX_PENDING_DURING_REPLAY} activities held: still open`)
  // …one more is too many: the socket is closed rather than the server's memory grown without end.
  const [last] = await publish(server.app, 'p1', 1)
  const closed = await Promise.race([
    resuming.closed.then(() => true),
    new Promise<false>((resolve) => { setTimeout(resolve, 5000, false).unref() })
  ])
  t.ok(closed, 'the resuming socket is closed')
  t.match(server.app.povRealtime.stats(), { slowConsumerCloses: 1, closed: { 4008: 1 } }, 'as a slow consumer, with 4008')
  broker.release()
  const plainCursors = () => plain.messages.filter((m) => m.type === 'activity').map((m) => m.cursor)
  await waitFor(() => plainCursors().length >= held + 1, 10_000, 'the other subscriber to get every activity')
  t.same([plainCursors().length, plainCursors().at(-1)], [held + 1, last], 'the other subscriber got every activity')
  t.same(resuming.activities(), [], 'and the resuming one none, not even after the replay was let go')
})

t.test('a socket that closes during a replay leaves no subscription behind', async (t) => {
  const broker = new HeldReplayBroker('after')
  const server = await startServer(t, { broker })
  const [since] = await publish(server.app, 'p1', 2)
  const client = await server.connect()
  client.send({ type: 'subscribe', povId: 'p1', since })
  await broker.replayHeld
  client.close()
  await closed(client)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  broker.release()
  await sleep(50)
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 0)
})
