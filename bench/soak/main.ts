/**
 * `npm run soak`: N clients for M minutes against one server process, with churn (clients leave, by a cut or a clean
 * close, and come back 0.1 to 1 s later resuming each PoV with `since`) while activities are broadcast at a fixed rate
 * across PoVs. Reports per client delivered vs expected (nothing lost, nothing duplicated, in order), the server's
 * memory after GC over time, and delivery latency (p50, p99). Exits with 1 when anything was lost, duplicated,
 * reordered or refused. Loopback only; every wait has a deadline. Not run in CI (test/soak-smoke.test.ts runs it for
 * a few seconds).
 *
 *   --clients <n>     clients (default 200)
 *   --minutes <m>     how long activities flow, fractions allowed (default 2)
 *   --povs <n>        PoVs the activities go to, round robin (default 20)
 *   --watch <n>       PoVs each client watches (default 3)
 *   --rate <n>        activities per second over all PoVs (default 100)
 *   --churn <f>       fraction of the clients that leave each second (default 0.02)
 *   --sample <s>      seconds between memory samples (default 10)
 *   --seed <n>        which PoVs each client watches, and who leaves when (default 1)
 *   --json <file>     also write the report as JSON
 *   --per-client      print every client's line (by default only those that failed)
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import type { PovRealtimeStats } from '../../lib/stats.js'
import { ChildHandle } from '../ipc.js'
import { SoakClient, type SoakEndpoint } from './client.js'
import { LatencyHistogram } from './histogram.js'
import type { PublishedCounts, ServerSample } from './server.js'

const SERVER_ENTRY = fileURLToPath(new URL('./server.js', import.meta.url))
const CONNECT_CONCURRENCY = 20
const COME_BACK_MS = { min: 100, max: 1000 }
const RECONNECT_ATTEMPTS = 5
const SETTLE_TIMEOUT_MS = 30_000
const CATCH_UP_TIMEOUT_MS = 20_000
const MiB = 1024 * 1024

interface SoakOptions {
  clients: number
  minutes: number
  povs: number
  watch: number
  rate: number
  churn: number
  sample: number
  seed: number
  json: string | undefined
  perClient: boolean
}

interface ClientResult {
  userId: string
  povIds: string[]
  expected: number
  delivered: number
  lost: number
  duplicated: number
  outOfOrder: number
  unrecovered: number
  connects: number
  unexpectedCloses: number[]
  errors: string[]
}

interface SampleRow {
  seconds: number
  rssMiB: number
  heapMiB: number
  connections: number
  subscriptions: number
  deliveriesPerSecond: number
  /** p99 of the live deliveries since the previous sample, in ms. */
  p99: number
}

export interface SoakReport {
  options: SoakOptions
  seconds: number
  published: { total: number, failed: number, firstError?: string }
  expected: number
  delivered: number
  latency: { count: number, p50: number, p99: number, p999: number, max: number }
  resumes: number
  reconnectFailures: number
  /** Every client came back and resubscribed before publishing stopped. */
  settled: boolean
  /** Every client received its PoVs' last activity within the deadline. */
  caughtUp: boolean
  samples: SampleRow[]
  statsAfterAllLeft: PovRealtimeStats
  serverLog: { warnings: number, lines: string[] }
  failing: ClientResult[]
  clients: ClientResult[]
  ok: boolean
}

function parseOptions (argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '200' },
      minutes: { type: 'string', default: '2' },
      povs: { type: 'string', default: '20' },
      watch: { type: 'string', default: '3' },
      rate: { type: 'string', default: '100' },
      churn: { type: 'string', default: '0.02' },
      sample: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      json: { type: 'string' },
      'per-client': { type: 'boolean', default: false }
    }
  })
  const number = (name: keyof typeof values, min: number, max: number): number => {
    const value = Number(values[name])
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got ${values[name]}`)
    return value
  }
  const options: SoakOptions = {
    clients: Math.floor(number('clients', 1, 20_000)),
    minutes: number('minutes', 0.01, 24 * 60),
    povs: Math.floor(number('povs', 1, 10_000)),
    watch: Math.floor(number('watch', 1, 100)),
    rate: number('rate', 1, 100_000),
    churn: number('churn', 0, 1),
    sample: number('sample', 1, 3600),
    seed: Math.floor(number('seed', 0, 2 ** 31)),
    json: values.json,
    perClient: values['per-client']
  }
  if (options.watch > options.povs) throw new Error('--watch cannot exceed --povs')
  return options
}

/** A small seeded generator (mulberry32): the same seed picks the same PoVs and the same leavers. */
function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

function pick<T> (items: readonly T[], count: number, random: () => number): T[] {
  const pool = [...items]
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i))
    ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
  }
  return pool.slice(0, count)
}

/** Polls `check` every 50 ms; resolves whether it held before `timeout` ms. */
async function waitUntil (check: () => boolean, timeout: number): Promise<boolean> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

function resultOf (client: SoakClient, published: Record<string, number>): ClientResult {
  const result: ClientResult = {
    userId: client.userId,
    povIds: [...client.feeds.keys()],
    expected: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    unrecovered: 0,
    connects: client.connects,
    unexpectedCloses: client.unexpectedCloses,
    errors: client.errors
  }
  for (const [povId, feed] of client.feeds) {
    const count = published[povId] ?? 0
    result.expected += count
    result.delivered += feed.received
    // Missing at the end, plus numbers jumped over that no late arrival filled.
    result.lost += Math.max(0, count - feed.last) + Math.max(0, feed.skipped - feed.outOfOrder)
    result.duplicated += feed.duplicated
    result.outOfOrder += feed.outOfOrder
    result.unrecovered += feed.unrecovered
  }
  return result
}

function failed (result: ClientResult): boolean {
  return result.lost > 0 || result.duplicated > 0 || result.outOfOrder > 0 || result.unrecovered > 0 ||
    result.delivered !== result.expected || result.unexpectedCloses.length > 0 || result.errors.length > 0
}

async function soak (server: ChildHandle<{ port: number }>, secret: string, options: SoakOptions, log: (line: string) => void): Promise<SoakReport> {
  const origin = `http://127.0.0.1:${server.info.port}`
  const signAccessCookie = createSigner({ key: secret, expiresIn: '1h' })
  const endpoint: SoakEndpoint = {
    wsUrl: `ws://127.0.0.1:${server.info.port}/ws`,
    async token (userId) {
      const cookie = signAccessCookie({ userId, email: `${userId}@example.com`, role: 'member' })
      const response = await fetch(`${origin}/api/auth/ws-token`, { headers: { cookie: `accessToken=${cookie}` } })
      if (response.status !== 200) throw new Error(`the token route answered ${response.status}`)
      return (await response.json() as { token: string }).token
    }
  }
  const random = seededRandom(options.seed)
  const povIds = Array.from({ length: options.povs }, (_, k) => `soak-${k}`)
  const total = new LatencyHistogram()
  const interval = new LatencyHistogram()
  const reconnecting = new Set<SoakClient>()
  let reconnectFailures = 0

  function comeBack (client: SoakClient, delay: number): void {
    reconnecting.add(client)
    setTimeout(async () => {
      for (let attempt = 1; attempt <= RECONNECT_ATTEMPTS; attempt++) {
        try {
          await client.connect()
          break
        } catch (err) {
          if (attempt === RECONNECT_ATTEMPTS) {
            reconnectFailures++
            log(`${client.userId} could not reconnect: ${err instanceof Error ? err.message : String(err)}`)
          } else {
            await sleep(500)
          }
        }
      }
      reconnecting.delete(client)
    }, delay)
  }

  const events = {
    latency: (ms: number) => {
      total.record(ms)
      interval.record(ms)
    },
    lost: (client: SoakClient) => comeBack(client, COME_BACK_MS.min)
  }
  const clients = Array.from({ length: options.clients }, (_, i) => new SoakClient(`soak-u${i}`, pick(povIds, options.watch, random), endpoint, events))

  // Everyone watches before the first activity, so each client expects every activity of its PoVs.
  let next = 0
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, async () => {
    while (next < clients.length) await clients[next++]!.connect()
  }))
  if (!await waitUntil(() => clients.every((client) => client.live), SETTLE_TIMEOUT_MS)) throw new Error('the clients did not all subscribe in time')
  log(`${clients.length} clients connected, each watching ${options.watch} of ${options.povs} PoVs`)

  const samples: SampleRow[] = []
  const startedAt = Date.now()
  let previous = await server.call<ServerSample>('sample')
  const record = (sample: ServerSample): void => {
    const seconds = (sample.at - previous.at) / 1000
    const row: SampleRow = {
      seconds: Math.round((Date.now() - startedAt) / 1000),
      rssMiB: sample.rss / MiB,
      heapMiB: sample.heapUsed / MiB,
      connections: sample.stats.connections,
      subscriptions: sample.stats.subscriptions,
      deliveriesPerSecond: seconds > 0 ? (sample.stats.deliveries - previous.stats.deliveries) / seconds : 0,
      p99: interval.quantile(0.99)
    }
    samples.push(row)
    interval.reset()
    previous = sample
    log(`${String(row.seconds).padStart(5)} s  rss ${row.rssMiB.toFixed(1)} MiB  heap ${row.heapMiB.toFixed(1)} MiB  ` +
      `${row.connections} connections  ${row.subscriptions} subscriptions  ${Math.round(row.deliveriesPerSecond)} deliveries/s  ` +
      `p99 ${Number.isNaN(row.p99) ? '–' : `${row.p99.toFixed(1)} ms`}`)
  }
  record(previous)

  await server.call('publish', { rate: options.rate, povIds })
  const endAt = startedAt + options.minutes * 60_000
  let nextSampleAt = startedAt + options.sample * 1000
  let leavers = 0
  let leaves = 0
  while (Date.now() < endAt) {
    await sleep(Math.min(1000, endAt - Date.now()))
    leavers += options.churn * clients.length
    const present = clients.filter((client) => client.connected && !reconnecting.has(client))
    for (const client of pick(present, Math.min(present.length, Math.floor(leavers)), random)) {
      client.leave(leaves++ % 2 === 0 ? 'cut' : 'close')
      comeBack(client, COME_BACK_MS.min + random() * (COME_BACK_MS.max - COME_BACK_MS.min))
    }
    leavers -= Math.floor(leavers)
    if (Date.now() >= nextSampleAt) {
      record(await server.call<ServerSample>('sample'))
      nextSampleAt += options.sample * 1000
    }
  }

  const settled = await waitUntil(() => reconnecting.size === 0 && clients.every((client) => client.live), SETTLE_TIMEOUT_MS)
  const published = await server.call<PublishedCounts>('stop')
  const caughtUp = await waitUntil(() => clients.every((client) =>
    [...client.feeds].every(([povId, feed]) => feed.last >= (published.perPov[povId] ?? 0))), CATCH_UP_TIMEOUT_MS)
  record(await server.call<ServerSample>('sample'))
  const seconds = (Date.now() - startedAt) / 1000

  for (const client of clients) client.leave('close')
  let afterAllLeft = await server.call<ServerSample>('sample')
  const deadline = Date.now() + 10_000
  while (afterAllLeft.stats.connections > 0 && Date.now() < deadline) {
    await sleep(100)
    afterAllLeft = await server.call<ServerSample>('sample')
  }
  const serverLines = await server.call<string[]>('close')

  const results = clients.map((client) => resultOf(client, published.perPov))
  const failing = results.filter(failed)
  const { stats } = afterAllLeft
  const ok = settled && caughtUp && failing.length === 0 && published.failed === 0 && reconnectFailures === 0 &&
    afterAllLeft.warnings === 0 && stats.connections === 0 && stats.subscriptions === 0 && stats.povs === 0
  return {
    options,
    seconds,
    published: { total: Object.values(published.perPov).reduce((a, b) => a + b, 0), failed: published.failed, ...(published.firstError ? { firstError: published.firstError } : {}) },
    expected: results.reduce((sum, r) => sum + r.expected, 0),
    delivered: results.reduce((sum, r) => sum + r.delivered, 0),
    latency: { count: total.count, p50: total.quantile(0.5), p99: total.quantile(0.99), p999: total.quantile(0.999), max: total.max },
    resumes: results.reduce((sum, r) => sum + r.connects, 0) - clients.length,
    reconnectFailures,
    settled,
    caughtUp,
    samples,
    statsAfterAllLeft: stats,
    serverLog: { warnings: afterAllLeft.warnings, lines: serverLines },
    failing,
    clients: results,
    ok
  }
}

function describeClient (r: ClientResult): string {
  const problems = [
    r.lost && `${r.lost} lost`, r.duplicated && `${r.duplicated} duplicated`, r.outOfOrder && `${r.outOfOrder} out of order`,
    r.unrecovered && `${r.unrecovered} resumes not recovered`, r.unexpectedCloses.length && `closed by the server: ${r.unexpectedCloses.join(', ')}`,
    r.errors.length && `errors: ${r.errors.join(', ')}`
  ].filter(Boolean)
  return `${r.userId} [${r.povIds.join(' ')}]: ${r.delivered}/${r.expected} delivered, ${r.connects} connections` +
    (problems.length > 0 ? `; ${problems.join('; ')}` : '')
}

function printReport (report: SoakReport): void {
  const { options: o, latency, samples } = report
  const heaps = samples.map((s) => s.heapMiB)
  const lines = [
    '',
    `soak: ${o.clients} clients × ${o.watch} of ${o.povs} PoVs, ${o.rate} activities/s, churn ${o.churn}/s, ${report.seconds.toFixed(0)} s`,
    `published ${report.published.total} activities (${report.published.failed} rejected${report.published.firstError ? `: ${report.published.firstError}` : ''})`,
    `delivered ${report.delivered} of ${report.expected} expected; ${report.clients.length - report.failing.length} of ${report.clients.length} clients exact ` +
      '(every activity of their PoVs, once, in order)',
    `resumes: ${report.resumes} (reconnect failures: ${report.reconnectFailures}); all back before the end: ${report.settled}; caught up: ${report.caughtUp}`,
    `latency of live deliveries: ${latency.count} deliveries, p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms, ` +
      `p99.9 ${latency.p999.toFixed(1)} ms, max ${latency.max.toFixed(1)} ms`,
    `server heap after GC: ${heaps[0]!.toFixed(1)} MiB at the start, ${heaps.at(-1)!.toFixed(1)} MiB at the end, ${Math.max(...heaps).toFixed(1)} MiB at most; ` +
      `rss at most ${Math.max(...samples.map((s) => s.rssMiB)).toFixed(1)} MiB`,
    `after every client left: ${report.statsAfterAllLeft.connections} connections, ${report.statsAfterAllLeft.subscriptions} subscriptions, ${report.statsAfterAllLeft.povs} PoVs`,
    `server log lines at warn or above: ${report.serverLog.warnings}`,
    ...report.serverLog.lines.map((line) => `  ${line}`),
    ...(o.perClient ? report.clients : report.failing).map((r) => `  ${describeClient(r)}`),
    report.ok ? 'OK: nothing lost, nothing duplicated, nothing out of order' : 'FAILED'
  ]
  console.log(lines.join('\n'))
}

export async function main (root: string, argv: string[]): Promise<void> {
  const options = parseOptions(argv)
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is not built: run npm run build (npm run soak does)')
  const secret = randomBytes(32).toString('hex')
  const server = await ChildHandle.start<{ port: number }>(SERVER_ENTRY, [JSON.stringify({ root, secret })], {
    name: 'soak server',
    execArgv: ['--expose-gc']
  })
  let report: SoakReport
  try {
    report = await soak(server, secret, options, (line) => console.log(line))
  } finally {
    await server.stop()
  }
  printReport(report)
  if (options.json) await writeFile(options.json, JSON.stringify(report, null, 2) + '\n')
  process.exitCode = report.ok ? 0 : 1
}
