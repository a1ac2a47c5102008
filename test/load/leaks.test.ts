/**
 * Leaks (hardening): 10,000 connect / subscribe / drop cycles, concurrent in bounded groups, dropped in every way a
 * client goes (cut, clean close, unsubscribe first, cut mid-subscribe, resume with `since`), while activities are
 * published. Afterwards the plugin's counters are 0, the broker was told to unwatch every PoV it was told to watch,
 * no timer or socket created on the way is left, and the heap after GC has not grown beyond a bound.
 *
 * The server runs without a logger (a test logger would keep every line, which is growth of its own). The clients
 * are hand-written raw sockets: no keep-alive, nothing pooled.
 */
import Fastify from 'fastify'
import t from 'tap'
import povRealtime from '../../index.js'
import type { Broker, BrokerStartContext } from '../../lib/broker.js'
import { InProcessBroker } from '../../lib/in-process/index.js'
import { RawWebSocket } from '../helpers/raw-socket.js'
import { activeResources, exposeGc, heapAfterGc, trackResources } from '../helpers/resources.js'
import { SECRET, activity, socketToken, waitFor } from '../helpers/server.js'
import { closed } from '../helpers/socket-waits.js'

const CYCLES = 10_000
const WARM_UP_CYCLES = 500
/** Cycles in flight at once. */
const GROUP = 100
const POVS = 200
/**
 * Heap growth after GC allowed over the cycles. Measured here: 1.5 to 5 MiB (caches and compiled code settling). One
 * session kept alive per cycle (for instance by a timer never cleared) costs about 7 KiB, some 70 MiB in all.
 */
const HEAP_GROWTH_BOUND = 16 * 1024 * 1024
const CLOSE_NORMAL = Buffer.from([0x03, 0xe8])
const OPCODE_CLOSE = 0x8

/** The default broker, recording which PoVs it has been told to watch and not yet to unwatch. */
class WatchRecordingBroker implements Broker {
  readonly watched = new Set<string>()
  watches = 0
  readonly #inner = new InProcessBroker()

  start (context: BrokerStartContext) { return this.#inner.start(context) }
  publish (povId: string, activityJson: string) { return this.#inner.publish(povId, activityJson) }
  replay (povId: string, since: string) { return this.#inner.replay(povId, since) }
  close () { return this.#inner.close() }

  watch (povId: string): void {
    this.watches++
    this.watched.add(povId)
  }

  unwatch (povId: string): void {
    this.watched.delete(povId)
  }
}

t.test('10,000 connect / subscribe / drop cycles leave no socket, subscription, timer or memory behind', async (t) => {
  const broker = new WatchRecordingBroker()
  const app = Fastify({ logger: false })
  // Every cycle uses one token: up to GROUP sockets of one user at once (maxSocketsPerUser is tested in fairness-limits).
  await app.register(povRealtime, { secret: SECRET, broker, rateLimit: false, maxSocketsPerUser: GROUP })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const token = socketToken({}, {})
  /** The latest cursor of each PoV, for the cycles that resume. */
  const cursors = new Map<string, string>()
  const outcomes = { subscribed: 0, recovered: 0, cutMidSubscribe: 0 }

  async function cycle (i: number): Promise<void> {
    const povId = `leak-${i % POVS}`
    const client = await RawWebSocket.open(port, '/ws', token)
    try {
      const way = i % 5
      const since = way === 4 ? cursors.get(povId) : undefined
      client.send({ type: 'subscribe', povId, ...(since ? { since } : {}) })
      if (way === 3) {
        outcomes.cutMidSubscribe++
        return // cut before the answer: the subscription may be half made
      }
      const subscribed = await client.waitForMessage('subscribed')
      outcomes.subscribed++
      if (subscribed.recovered === true) outcomes.recovered++
      if (way === 1) {
        client.sendFrame(OPCODE_CLOSE, CLOSE_NORMAL)
        await closed(client, { within: 15_000 })
      } else if (way === 2) {
        client.send({ type: 'unsubscribe', povId })
        await client.waitForMessage('unsubscribed')
      }
    } finally {
      client.destroy()
    }
  }

  async function runCycles (from: number, to: number): Promise<void> {
    for (let start = from; start < to; start += GROUP) {
      const group = []
      for (let i = start; i < Math.min(start + GROUP, to); i++) group.push(cycle(i))
      // Publishing between groups gives the resuming cycles history to replay and the subscribers something to get.
      for (let p = 0; p < 5; p++) {
        const povId = `leak-${(start + p * 41) % POVS}`
        const { cursor } = await app.broadcastActivity(activity(povId))
        cursors.set(povId, cursor)
      }
      await Promise.all(group)
    }
    await waitFor(() => app.povRealtime.stats().connections === 0, 10_000, 'every socket to be forgotten')
  }

  await runCycles(0, WARM_UP_CYCLES)
  const gc = exposeGc()
  const heapBefore = gc ? heapAfterGc(gc) : 0
  const resourcesBefore = activeResources()
  const tracked = trackResources()
  tracked.enable()
  const started = Date.now()
  await runCycles(WARM_UP_CYCLES, WARM_UP_CYCLES + CYCLES)
  const took = Date.now() - started
  // A socket's last handles go a turn or two after its close event.
  await waitFor(() => [...tracked.live.values()].every((type) => type !== 'TCPWRAP'), 5000, 'the cycles\' TCP handles to be released')
  // Destroy hooks are delivered in batches, a turn after the fact (waitFor's last timer has fired but is not reported yet).
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve))
  tracked.disable()

  t.match(app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 }, 'the current counters are back to 0')
  t.ok(broker.watches > POVS, `the broker was told to watch ${broker.watches} times`)
  t.same([...broker.watched], [], 'and to unwatch every PoV it watched')
  t.equal(outcomes.subscribed + outcomes.cutMidSubscribe, WARM_UP_CYCLES + CYCLES, 'every cycle subscribed, or was cut while subscribing')
  t.ok(outcomes.recovered > 0, `${outcomes.recovered} resumes replayed from history`)
  t.same([...tracked.live.values()], [], 'no timer or TCP handle created during the cycles is left (unref\'d timers included)')
  t.same(activeResources(), resourcesBefore, 'the event loop holds what it held before the cycles')
  t.comment(`${CYCLES} cycles in ${(took / 1000).toFixed(1)} s (${Math.round(CYCLES / (took / 1000))} per second), ${GROUP} at a time`)

  if (!gc) {
    t.pass('heap growth', { skip: 'gc() could not be exposed in this process' })
    return
  }
  const heapAfter = heapAfterGc(gc)
  const growth = heapAfter - heapBefore
  t.comment(`heap after GC: ${(heapBefore / 1048576).toFixed(1)} MiB before, ${(heapAfter / 1048576).toFixed(1)} MiB after (${(growth / 1024).toFixed(0)} KiB)`)
  t.ok(growth < HEAP_GROWTH_BOUND, `heap growth over ${CYCLES} cycles stays under ${HEAP_GROWTH_BOUND / 1048576} MiB (${(growth / 1024).toFixed(0)} KiB)`)
})
