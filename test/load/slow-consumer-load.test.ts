/**
 * Slow consumers under load (hardening), beyond the cut itself (slow-consumer.test.ts): while a peer that stopped
 * reading is sent thousands of activities, the memory the server holds for it stays within `maxBufferedBytes`, and
 * the fast subscribers of the same PoV get their activities as quickly as when no slow peer is there. With `presence`
 * on, presence and typing are what the slow peer loses first; its activities keep going until the cut.
 */
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { LatencyProbe, percentile } from '../helpers/latency-probe.js'
import { RawWebSocket } from '../helpers/raw-socket.js'
import { exposeGc, memoryAfterGc } from '../helpers/resources.js'
import { activity, sleep, startServer, waitFor, type TestServer } from '../helpers/server.js'

/** About 8 KiB per activity frame. */
const MESSAGE = 'x'.repeat(8 * 1024)
/** What one activity frame of MESSAGE adds to a socket's queue, at most (the JSON around the message, the frame header). */
const FRAME_BOUND = MESSAGE.length + 1024
const MiB = 1024 * 1024

/** Publishes one probed activity to `povId`, stamped with its publish time; resolves with the sockets it was written to. */
async function publishProbed (server: TestServer, povId: string, seq: number): Promise<number> {
  const input = activity(povId, { id: `a${seq}`, message: MESSAGE, metadata: { sentAt: performance.now(), seq } })
  return (await server.app.broadcastActivity(input)).delivered
}

t.test('while a peer that stopped reading is sent thousands of activities, the server holds at most maxBufferedBytes for it', async (t) => {
  const gc = exposeGc()
  if (!gc) {
    t.fail('gc() could not be exposed in this process: memory cannot be measured')
    return
  }
  const maxBufferedBytes = 256 * 1024
  /** Enough that a server queueing without bound would hold some 30 MiB for the slow peer. */
  const activities = 4000
  const batch = 20
  /** Heap and Buffer noise between two measurements after GC (measured: under 1 MiB). */
  const margin = 4 * MiB
  // No history: the socket's queue is then the only holder of an activity's frame once the fast peer has read it.
  // The plugin keeps its sockets out of `websocketServer.clients`: the server's TCP sockets are taken as they connect.
  const serverSockets: Socket[] = []
  const server = await startServer(t, { maxBufferedBytes, history: false }, (app) => {
    app.server.on('connection', (socket: Socket) => { serverSockets.push(socket) })
  })
  const fast = await LatencyProbe.open(server.wsUrl, 'fast', 'p1')
  t.teardown(() => fast.close())
  let seq = 0
  // Warm-up: the paths compiled and the pools filled before the baseline.
  while (seq < 200) await publishProbed(server, 'p1', seq++)
  await waitFor(() => fast.received === seq, 10_000, 'the warm-up to be read')

  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'slow' }))
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'p1' })
  await slow.waitForMessage('subscribed')
  slow.stopReading()
  // What ws's `bufferedAmount` reads for it: activity frames are written to this socket directly (no extension).
  const slowOnServer = serverSockets.find((socket) => socket.remotePort === slow.socket.localPort)!
  t.ok(slowOnServer, 'the slow peer\'s socket on the server side is known')
  const stats = () => server.app.povRealtime.stats()

  const baseline = memoryAfterGc(gc)
  let peakQueued = 0
  let peakGrowth = 0
  let queuedAtPeak = 0
  /** The slow peer's queue at each measurement made while the server held some of it. */
  const measuredQueues: number[] = []
  let cutAfter: number | undefined
  const firstSeq = seq
  const measure = (): void => {
    const queued = slowOnServer.writableLength
    const growth = memoryAfterGc(gc) - baseline
    if (growth > peakGrowth) [peakGrowth, queuedAtPeak] = [growth, queued]
    if (queued > 0) measuredQueues.push(queued)
  }
  for (let sent = 0; sent < activities; sent += batch) {
    for (let i = 0; i < batch; i++) {
      await publishProbed(server, 'p1', seq++)
      const queued = slowOnServer.writableLength
      peakQueued = Math.max(peakQueued, queued)
      // While the server queues for the slow peer (the kernel's buffers are full), at every 64 KiB more it holds (a
      // few times: past the bound, once is enough to fail).
      if (!slowOnServer.destroyed && measuredQueues.length < 8 && queued >= (measuredQueues.at(-1) ?? 0) + 64 * 1024) measure()
    }
    await waitFor(() => fast.received === seq, 10_000, 'the fast peer to read the batch')
    if (stats().slowConsumerCloses > 0) cutAfter ??= seq - firstSeq
    if (sent % (batch * 50) === 0) measure()
  }
  await waitFor(() => slowOnServer.destroyed && stats().connections === 1, 5000, 'the slow socket to be gone from the server')
  const finalGrowth = memoryAfterGc(gc) - baseline

  t.equal(stats().slowConsumerCloses, 1, `the slow peer was cut after ${cutAfter} of the ${activities} activities`)
  t.equal(fast.received, seq, 'the fast peer read every activity')
  t.comment(`largest queue to the slow peer on the server: ${(peakQueued / 1024).toFixed(0)} KiB (maxBufferedBytes ${maxBufferedBytes / 1024} KiB)`)
  t.comment(`heap + external after GC over the baseline: ${(peakGrowth / MiB).toFixed(2)} MiB at most (${(queuedAtPeak / 1024).toFixed(0)} KiB queued then), ${(finalGrowth / MiB).toFixed(2)} MiB at the end, after ${(activities * MESSAGE.length / MiB).toFixed(0)} MiB of activities`)
  t.ok(measuredQueues.some((queued) => queued >= maxBufferedBytes * 0.75),
    `memory was measured while the server queued for the slow peer (${measuredQueues.map((queued) => Math.round(queued / 1024)).join(', ')} KiB queued)`)
  t.ok(peakQueued > maxBufferedBytes, 'the slow peer\'s queue did reach maxBufferedBytes (the bound was put to the test)')
  t.ok(peakQueued <= maxBufferedBytes + FRAME_BOUND, 'the server never queued more than maxBufferedBytes and one frame to it')
  t.ok(peakGrowth <= maxBufferedBytes + margin, `server memory grew by at most maxBufferedBytes + ${margin / MiB} MiB while the slow peer was held`)
  t.ok(finalGrowth <= margin, 'and came back once it was cut')
})

/**
 * Publishes probed activities to p1 at one every `period` ms (back to back, yielding to I/O in between, when behind
 * schedule), until `done` says so; `next` gives each its sequence number, `each` gets each result.
 */
async function publishAtFixedRate (
  server: TestServer,
  next: () => number,
  period: number,
  done: (published: number) => boolean,
  each: (seq: number, delivered: number) => void
): Promise<void> {
  const start = performance.now()
  for (let published = 0; !done(published); published++) {
    const wait = start + published * period - performance.now()
    if (wait >= 1) await sleep(wait)
    else await new Promise((resolve) => setImmediate(resolve))
    const seq = next()
    each(seq, await publishProbed(server, 'p1', seq))
  }
}

interface LatencyFigures { p50: number, p99: number, samples: number }

function figures (probes: readonly LatencyProbe[], seqs: readonly number[]): LatencyFigures {
  const latencies = probes.flatMap((probe) => seqs.map((seq) => probe.latencies[seq]!))
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), samples: latencies.length }
}

const format = ({ p50, p99, samples }: LatencyFigures): string => `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${samples} deliveries)`

/** Within the generous bound the suite allows: the larger of 50 ms more and 3 times as much. */
const unaffected = (withSlow: number, without: number): boolean => withSlow <= Math.max(without + 50, 3 * without)

async function fastLatencyWithAndWithoutSlowPeer (t: Test, presence: boolean): Promise<void> {
  const probesCount = 4
  /** One activity every 2 ms: 500 per second, some 4 MiB/s to each subscriber. */
  const period = 2
  const baselineActivities = 750
  /**
   * With `presence`: a typing change every 12 activities (40 per second), the fast subscribers taking turns (each at
   * 10 per second, within the default rate limit).
   */
  const typingEvery = 12
  const maxBufferedBytes = 2 * MiB
  const server = await startServer(t, { maxBufferedBytes, presence })
  const stats = () => server.app.povRealtime.stats()
  const probes = await Promise.all(Array.from({ length: probesCount }, (_, i) => LatencyProbe.open(server.wsUrl, `fast${i}`, 'p1')))
  t.teardown(() => { for (const probe of probes) probe.close() })
  let seq = 0
  const typing = probes.map(() => false)
  /** Whether the slow peer was still subscribed when the latest activity was published. */
  let slowOpen = false
  const next = (): number => {
    if (presence && seq % typingEvery === 0) {
      const typist = (seq / typingEvery) % probesCount
      typing[typist] = !typing[typist]
      probes[typist]!.send({ type: 'typing', povId: 'p1', typing: typing[typist] })
    }
    slowOpen = stats().slowConsumerCloses === 0
    return seq++
  }
  const allRead = (what: string) => waitFor(() => probes.every((probe) => probe.received === seq), 10_000, what)

  await publishAtFixedRate(server, next, period, (n) => n === 200, () => {})
  await allRead('the warm-up to be read')
  const baselineSeqs: number[] = []
  await publishAtFixedRate(server, next, period, (n) => n === baselineActivities, (s) => { baselineSeqs.push(s) })
  await allRead('the run without a slow peer to be read')

  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'slow' }))
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'p1' })
  await slow.waitForMessage(presence ? 'presence' : 'subscribed')
  slow.stopReading()
  /** Activities published while the slow peer was still subscribed, with the sockets each was written to. */
  const whileSlow: Array<{ seq: number, delivered: number, droppedSoFar: number }> = []
  let afterCut = 0
  await publishAtFixedRate(server, next, period, (n) => afterCut === 100 || n === 4000, (s, delivered) => {
    if (slowOpen) whileSlow.push({ seq: s, delivered, droppedSoFar: stats().presenceDropped })
    else afterCut++
  })
  await allRead('the run with a slow peer to be read')

  t.equal(stats().slowConsumerCloses, 1, `the slow peer was cut after ${whileSlow.length} activities`)
  t.equal(stats().closed['4008'], 1, 'with 4008')
  t.ok(whileSlow.length >= 200, 'it was there long enough to measure the fast peers meanwhile')
  t.ok(whileSlow.slice(0, -1).every(({ delivered }) => delivered === probesCount + 1), 'every activity before the cut was written to the slow peer too')
  t.equal(whileSlow.at(-1)!.delivered, probesCount, 'the one that took it past maxBufferedBytes was not: it went down with the connection')
  const without = figures(probes, baselineSeqs)
  const withSlow = figures(probes, whileSlow.map((entry) => entry.seq))
  t.comment(`${probesCount} fast subscribers, ${1000 / period} activities/s of 8 KiB${presence ? ', presence on' : ''}`)
  t.comment(`without a slow peer: ${format(without)}`)
  t.comment(`with a slow peer until its cut: ${format(withSlow)}`)
  t.ok(unaffected(withSlow.p50, without.p50), 'the fast subscribers\' median latency is unaffected by the slow peer')
  t.ok(unaffected(withSlow.p99, without.p99), 'and so is their p99')

  if (!presence) return
  const firstDrop = whileSlow.findIndex(({ droppedSoFar }) => droppedSoFar > 0)
  const droppedBeforeCut = whileSlow.at(-1)!.droppedSoFar
  t.ok(droppedBeforeCut > 0, `${droppedBeforeCut} typing messages to the slow peer were dropped before its cut`)
  t.ok(firstDrop !== -1 && whileSlow.length - firstDrop >= 10,
    `its activities kept going after the first drop (${whileSlow.length - firstDrop} more were written to it until the cut)`)
}

t.test('fast subscribers of a PoV get their activities as quickly with a slow peer on it as without', async (t) => {
  await fastLatencyWithAndWithoutSlowPeer(t, false)
})

t.test('with presence on, typing is dropped for the slow peer first, its activities keep going until the cut, and fast subscribers are unaffected', async (t) => {
  await fastLatencyWithAndWithoutSlowPeer(t, true)
})
