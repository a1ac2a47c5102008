/**
 * Memory attacks by an ordinary account (hardening): sockets that stop reading while they go on sending requests inside
 * the rate limit (19 a second, the default allowing 20), and keep themselves "alive" with unsolicited protocol pongs.
 * Everything the server queues to such a socket counts against `maxBufferedBytes`: a socket whose answers are large
 * (`reads` on a PoV with 1,000 marks) is closed with 4008 once the kernel's buffers and the bound are full; one whose
 * answers are small (pings, subscribes, typing that fans out) is terminated by the heartbeat, since a pong only counts
 * when it echoes the ping's payload, which a peer that reads nothing never sees. Meanwhile the server holds at most the
 * bound (and one frame) for each, its memory comes back once they are gone, and other clients' deliveries stay on time.
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import type { PovRealtimeOptions } from '../../index.js'
import { READ_EVENT_COALESCE_MS } from '../../lib/constants.js'
import { LatencyProbe, percentile } from '../helpers/latency-probe.js'
import { RawWebSocket } from '../helpers/raw-socket.js'
import { exposeGc, memoryAfterGc } from '../helpers/resources.js'
import { activity, sleep, startServer, waitFor, type TestServer } from '../helpers/server.js'

const MiB = 1024 * 1024
/** The default bound (docs/options.md): the attacks run against what an app gets without configuring anything. */
const MAX_BUFFERED_BYTES = MiB
/** Requests per second per attacker: inside the default rate limit (200 per 10 s). */
const RATE = 19
const OPCODE_PONG = 0xa
/** Sockets attacking at once. */
const ATTACKERS = 3
/** Users with a read mark on the attacked PoV (a `reads` answer lists up to 1,000). */
const MARKS = 1000
/** Heap and Buffer noise between two measurements after GC, for the whole process. */
const MARGIN = 6 * MiB

interface Server extends TestServer {
  /** The server's side of a raw client's TCP connection. */
  serverSocketOf (client: RawWebSocket): Socket
}

async function startAttackedServer (t: Test, options: Partial<PovRealtimeOptions>): Promise<Server> {
  // The plugin keeps its sockets out of `websocketServer.clients`: the server's TCP sockets are taken as they connect.
  const sockets: Socket[] = []
  const server = await startServer(t, { maxBufferedBytes: MAX_BUFFERED_BYTES, ...options }, (app) => {
    app.server.on('connection', (socket: Socket) => { sockets.push(socket) })
  })
  return {
    ...server,
    serverSocketOf: (client) => sockets.find((socket) => socket.remotePort === client.socket.localPort)!
  }
}

/** Gives p1 `MARKS` read marks (users `reader-0000`…); returns the size of the `reads` answer that lists them. */
async function markMany (server: TestServer): Promise<number> {
  const { cursor } = await server.app.broadcastActivity(activity('p1'))
  for (let i = 0; i < MARKS; i++) await server.app.povRealtime.markRead(`reader-${String(i).padStart(4, '0')}`, 'p1', cursor)
  // Past the coalescing window: a client subscribed within it would also get these marks as unsolicited `reads`.
  await sleep(READ_EVENT_COALESCE_MS * 2)
  const reads = await server.app.povRealtime.reads('p1')
  return Buffer.byteLength(JSON.stringify({ type: 'reads', povId: 'p1', reads }))
}

interface Attacker {
  readonly client: RawWebSocket
  readonly onServer: Socket
  /** The largest queue the server held for it (its socket's `writableLength`, which ws's `bufferedAmount` reads). */
  peakQueued: number
  /** When the server let go of its socket, in ms after the attack started. */
  goneAfter: number | undefined
}

interface AttackPlan {
  /** Messages the attacker sends before it stops reading (after its `subscribe` is answered). */
  readonly setUp: (client: RawWebSocket) => Promise<void>
  /** One request, sent `RATE` times a second. */
  readonly request: (client: RawWebSocket, tick: number) => void
  /** The longest the attack may last before the test gives up on the server closing the attackers. */
  readonly windowMs: number
  /** With `gc`: memory is measured (heap + external after GC) about every second. */
  readonly gc?: () => void
}

interface AttackOutcome {
  readonly attackers: readonly Attacker[]
  /** Heap + external after GC over the baseline, at each measurement (ms since the start, bytes). */
  readonly growth: ReadonlyArray<readonly [number, number]>
  readonly baseline: number
}

/**
 * Opens `ATTACKERS` raw sockets as users `attacker0`…, has each subscribe to p1, stop reading, then send `request`
 * `RATE` times a second and an unsolicited pong every 200 ms, until the server has let go of every one of them or
 * `windowMs` has passed.
 */
async function attack (t: Test, server: Server, plan: AttackPlan): Promise<AttackOutcome> {
  const baseline = plan.gc ? memoryAfterGc(plan.gc) : 0
  const attackers: Attacker[] = []
  for (let i = 0; i < ATTACKERS; i++) {
    const client = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: `attacker${i}` }))
    t.teardown(() => client.destroy())
    await plan.setUp(client)
    client.stopReading()
    attackers.push({ client, onServer: server.serverSocketOf(client), peakQueued: 0, goneAfter: undefined })
  }
  const start = performance.now()
  const growth: Array<[number, number]> = []
  let tick = 0
  const requests = setInterval(() => {
    tick++
    for (const { client } of attackers) plan.request(client, tick)
  }, 1000 / RATE)
  const pongs = setInterval(() => {
    for (const { client } of attackers) client.sendFrame(OPCODE_PONG, randomBytes(8))
  }, 200)
  const watch = setInterval(() => {
    for (const attacker of attackers) {
      attacker.peakQueued = Math.max(attacker.peakQueued, attacker.onServer.writableLength)
      if (attacker.onServer.destroyed) attacker.goneAfter ??= performance.now() - start
    }
  }, 5)
  let nextMeasure = 1000
  try {
    while (attackers.some((attacker) => attacker.goneAfter === undefined) && performance.now() - start < plan.windowMs) {
      await sleep(50)
      if (plan.gc && performance.now() - start >= nextMeasure) {
        growth.push([Math.round(performance.now() - start), memoryAfterGc(plan.gc) - baseline])
        nextMeasure += 1000
      }
    }
  } finally {
    clearInterval(requests)
    clearInterval(pongs)
    clearInterval(watch)
  }
  return { attackers, growth, baseline }
}

/** Sends `make(tick)` as the attacker's request. */
function sending (make: (tick: number) => unknown): AttackPlan['request'] {
  return (client, tick) => client.send(make(tick))
}

/** Subscribes the raw client to p1 and waits for the answers it needs before it stops reading. */
function subscribing (...answers: string[]): AttackPlan['setUp'] {
  return async (client) => {
    client.send({ type: 'subscribe', povId: 'p1' })
    for (const answer of answers) await client.waitForMessage(answer)
  }
}

const mib = (bytes: number): string => (bytes / MiB).toFixed(2)

/** Reports and checks what the server held for the attackers and how it let go of them. */
function checkHeld (t: Test, server: Server, outcome: AttackOutcome, frameBound: number): void {
  for (const [i, { peakQueued, goneAfter }] of outcome.attackers.entries()) {
    t.comment(`attacker${i}: the server queued at most ${(peakQueued / 1024).toFixed(0)} KiB for it; let go after ${goneAfter === undefined ? 'never' : `${Math.round(goneAfter)} ms`}`)
    t.ok(peakQueued <= MAX_BUFFERED_BYTES + frameBound, `attacker${i}: never more than maxBufferedBytes and one frame queued`)
  }
  t.equal(server.app.povRealtime.stats().connections, 0, 'every attacker is gone from the server')
}

t.test('reads on a PoV with 1,000 marks from sockets that stop reading: closed with 4008, memory held within the bound and given back', async (t) => {
  const gc = exposeGc()
  if (!gc) {
    t.fail('gc() could not be exposed in this process: memory cannot be measured')
    return
  }
  const server = await startAttackedServer(t, { readReceipts: true })
  const answerBytes = await markMany(server)
  const plan: AttackPlan = {
    setUp: subscribing('subscribed'),
    request: sending(() => ({ type: 'reads', povId: 'p1' })),
    // Long enough for an unbounded server to show its growth plainly (2 MB/s per socket or so).
    windowMs: 20_000,
    gc
  }
  const outcome = await attack(t, server, plan)
  const peak = Math.max(0, ...outcome.growth.map(([, bytes]) => bytes))
  const last = outcome.growth.at(-1)
  t.comment(`a reads answer listing ${MARKS} marks: ${(answerBytes / 1024).toFixed(0)} KiB; ${RATE} requests a second from each of ${ATTACKERS} sockets`)
  t.comment(`memory over the baseline (heap + external after GC), per second: ${outcome.growth.map(([, bytes]) => mib(bytes)).join(', ')} MiB`)
  t.comment(`memory held per non-reading socket: at most ${mib(peak / ATTACKERS)} MiB${last ? `, ${mib(last[1] / ATTACKERS)} MiB at ${last[0]} ms` : ''}`)
  t.comment(`the server's queue to each attacker at its largest: ${outcome.attackers.map(({ peakQueued }) => mib(peakQueued)).join(', ')} MiB; rejected ${JSON.stringify(server.app.povRealtime.stats().rejected)}`)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the attackers to be forgotten')
  const finalGrowth = memoryAfterGc(gc) - outcome.baseline
  t.comment(`${mib(finalGrowth)} MiB over the baseline once they were gone`)
  const stats = server.app.povRealtime.stats()
  t.equal(stats.slowConsumerCloses, ATTACKERS, 'each attacker was closed as a slow consumer')
  t.equal(stats.closed['4008'], ATTACKERS, 'with 4008')
  t.ok(outcome.attackers.every(({ goneAfter }) => goneAfter !== undefined && goneAfter < 15_000), 'within 15 s of the attack\'s start')
  checkHeld(t, server, outcome, answerBytes)
  t.ok(peak <= ATTACKERS * (MAX_BUFFERED_BYTES + answerBytes) + MARGIN, `server memory grew by at most the attackers' bounds + ${MARGIN / MiB} MiB`)
  t.ok(finalGrowth <= MARGIN, 'and came back near its start once they were gone')
})

/** Activities to p2 at one every `period` ms; resolves with each one's delivery latency to the probe. */
async function probeLatency (server: TestServer, probe: LatencyProbe, period: number, done: (published: number) => boolean): Promise<number[]> {
  const first = probe.received
  const start = performance.now()
  let published = 0
  for (; !done(published); published++) {
    const wait = start + published * period - performance.now()
    if (wait >= 1) await sleep(wait)
    await server.app.broadcastActivity(activity('p2', { metadata: { sentAt: performance.now(), seq: first + published } }))
  }
  await waitFor(() => probe.received === first + published, 10_000, 'the probe to read every activity')
  return probe.latencies.slice(first, first + published)
}

t.test('while three sockets run the reads attack, another client\'s deliveries stay on time', async (t) => {
  /** The stated bound on the other client's p99 delivery latency during the attack (shared 2-core machine). */
  const p99Bound = 250
  const server = await startAttackedServer(t, { readReceipts: true })
  await markMany(server)
  const probe = await LatencyProbe.open(server.wsUrl, 'bystander', 'p2')
  t.teardown(() => probe.close())
  const period = 10
  await probeLatency(server, probe, period, (n) => n === 100) // warm-up
  const without = await probeLatency(server, probe, period, (n) => n === 300)

  let attacking = true
  const during = probeLatency(server, probe, period, () => !attacking)
  const outcome = await attack(t, server, {
    setUp: subscribing('subscribed'),
    request: sending(() => ({ type: 'reads', povId: 'p1' })),
    windowMs: 20_000
  })
  attacking = false
  const withAttack = await during
  const describe = (latencies: number[]): string =>
    `p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms (${latencies.length} deliveries)`
  t.comment(`the bystander's latency without the attack: ${describe(without)}; during it: ${describe(withAttack)}`)
  t.equal(server.app.povRealtime.stats().closed['4008'], ATTACKERS, 'the attackers were closed with 4008')
  t.ok(outcome.attackers.every(({ goneAfter }) => goneAfter !== undefined), 'all of them')
  t.ok(percentile(withAttack, 0.99) <= p99Bound, `the bystander's p99 stays under ${p99Bound} ms during the attack`)
})

interface SmallAnswersCase {
  readonly name: string
  readonly options: Partial<PovRealtimeOptions>
  readonly setUp: AttackPlan['setUp']
  readonly request: AttackPlan['request']
  /** Readers (ws clients that read everything) subscribed to p1 before the attack. */
  readonly readers?: number
  /** ms between heartbeat pings: the attackers must be gone within two of them and a second of slack. */
  readonly heartbeat: number
  /** The attack fills the kernel's buffers before the heartbeat ends it: the server queues for the attackers. */
  readonly queues?: boolean
}

const smallAnswers: SmallAnswersCase[] = [
  {
    name: 'application pings',
    options: {},
    setUp: subscribing('subscribed'),
    request: sending(() => ({ type: 'ping' })),
    heartbeat: 2000
  },
  {
    name: 'subscribes, each answered with subscribed, the read state and a presence snapshot of 100 members of 1 KiB',
    options: { readReceipts: true, presence: { info: (user) => ({ bio: `${user.userId} `.padEnd(900, '.') }) } },
    setUp: subscribing('subscribed', 'presence'),
    request: sending(() => ({ type: 'subscribe', povId: 'p1' })),
    readers: 100,
    // Some 2 MB a second to each attacker: loopback's socket buffers take 15 MB or so before the server has to queue,
    // so the heartbeat's second turn must come later than that.
    heartbeat: 8000,
    queues: true
  },
  {
    name: 'typing that fans out to the other attackers',
    options: { presence: true },
    setUp: subscribing('subscribed', 'presence'),
    request: sending((tick) => ({ type: 'typing', povId: 'p1', typing: tick % 2 === 0 })),
    readers: 2,
    heartbeat: 2000
  }
]

for (const { name, options, setUp, request, readers = 0, heartbeat, queues = false } of smallAnswers) {
  t.test(`${name} from sockets that stop reading and send unsolicited pongs: the heartbeat ends them, memory held within the bound`, async (t) => {
    const gc = exposeGc()
    if (!gc) {
      t.fail('gc() could not be exposed in this process: memory cannot be measured')
      return
    }
    const deadline = 2 * heartbeat + 1000
    const server = await startAttackedServer(t, { ...options, heartbeatInterval: heartbeat })
    const readerClients = []
    for (let i = 0; i < readers; i++) {
      const reader = await server.connect({ claims: { userId: `reader${i}` } })
      await reader.subscribe('p1')
      readerClients.push(reader)
    }
    // The attack starts right after a tick at the latest, so the first ping it misses comes within one interval.
    const outcome = await attack(t, server, { setUp, request, windowMs: 3 * deadline, gc })
    for (const reader of readerClients) reader.terminate()
    await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'every socket to be forgotten')
    const finalGrowth = memoryAfterGc(gc) - outcome.baseline
    const peak = Math.max(0, ...outcome.growth.map(([, bytes]) => bytes))
    t.comment(`memory held per non-reading socket: at most ${mib(peak / ATTACKERS)} MiB; ${mib(finalGrowth)} MiB in all once they were gone`)
    t.ok(outcome.attackers.every(({ goneAfter }) => goneAfter !== undefined && goneAfter <= deadline),
      `each attacker was let go within ${deadline} ms (heartbeat ${heartbeat} ms), unsolicited pongs notwithstanding`)
    checkHeld(t, server, outcome, 128 * 1024)
    if (queues) t.ok(outcome.attackers.every(({ peakQueued }) => peakQueued > 0), 'the server did queue for them (the bound was put to the test)')
    t.ok(peak <= ATTACKERS * MAX_BUFFERED_BYTES + MARGIN, 'server memory grew by at most the attackers\' bounds and some noise')
    t.ok(finalGrowth <= MARGIN, 'and came back near its start')
  })
}
