/**
 * The connection-density scenario (`npm run bench -- --density`): as many authenticated sockets as one process may
 * hold here, subscribed over many PoVs, and what they cost. Clients are spread over several load-generator processes
 * (the file limit counts each socket in the server process and in its client's process). Measured, per target:
 * connection set-up rate (the token route included for the plugin), server CPU per connection, RSS and heap + external
 * per connection after a full GC, the latency of broadcasts to one large PoV and of a steady rate to the others while
 * all are connected, and the event-loop delay over an idle window that holds at least one heartbeat interval.
 * Bounded: every step has a deadline, and a file limit too low for the count asked stops it before anything starts.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ChildHandle } from './ipc.js'
import type { ArmRequest, ConnectRequest, WaitResult } from './load-generator.js'
import { CONNECT_CONCURRENCY } from './scenarios.js'
import type { CpuSnapshot, LagSnapshot, MemorySnapshot, PublishRequest, PublishResult } from './server-process.js'
import type { RunContext, Target } from './targets.js'

const SERVER_ENTRY = fileURLToPath(new URL('./server-process.js', import.meta.url))
const LOAD_ENTRY = fileURLToPath(new URL('./load-generator.js', import.meta.url))

/** Descriptors a process needs besides its sockets (stdio, IPC, the listening socket, libuv's own). */
const DESCRIPTOR_MARGIN = 100

export interface DensityScenario {
  /** Authenticated sockets in all. */
  readonly clients: number
  /** PoVs they are spread over, one each (client `i` of a load generator watches `p<i % povs>`). */
  readonly povs: number
  /** Clients per load-generator process (a divisor of `clients`, and a multiple of `povs`). */
  readonly perProcess: number
  /** Subscribers of the large PoV (spread evenly over the load generators), on top of their own PoV. */
  readonly largePov: number
  /** Broadcasts to the large PoV, at `largeRate` per second. */
  readonly largeBroadcasts: number
  readonly largeRate: number
  /** Broadcasts at `steadyRate` per second, round robin over the PoVs, while all are connected. */
  readonly steadyBroadcasts: number
  readonly steadyRate: number
  /** The plugin's `heartbeatInterval` for the run, and the idle window the event-loop delay is measured over. */
  readonly heartbeatInterval: number
  readonly lagWindow: number
}

export const DENSITY: DensityScenario = {
  clients: 18_000,
  povs: 1800,
  perProcess: 9000,
  largePov: 1000,
  largeBroadcasts: 50,
  largeRate: 10,
  steadyBroadcasts: 1000,
  steadyRate: 100,
  heartbeatInterval: 10_000,
  lagWindow: 12_000
}

/** Seconds: a few hundred sockets over two load generators, every step played. */
export const DENSITY_SMOKE: DensityScenario = {
  clients: 60,
  povs: 6,
  perProcess: 30,
  largePov: 20,
  largeBroadcasts: 3,
  largeRate: 50,
  steadyBroadcasts: 30,
  steadyRate: 200,
  heartbeatInterval: 300,
  lagWindow: 400
}

/** The scenario at another size (`--density-clients`): PoVs and processes scaled, the rest as in `base`. */
export function densityOfSize (base: DensityScenario, clients: number): DensityScenario {
  const processes = Math.ceil(clients / base.perProcess)
  const perProcess = Math.ceil(clients / processes / 10) * 10
  return { ...base, clients: perProcess * processes, perProcess, povs: perProcess / 5, largePov: Math.min(base.largePov, perProcess * processes / 2) }
}

export interface DensityMeasurement {
  target: Target['id']
  clients: number
  povs: number
  loadGenerators: number
  /** Connections per second, from the first attempt to the last socket open (token fetches included). */
  perSecond: number
  /** Server CPU per connection set up, µs. */
  cpuMicros: number
  /** Per connection, connected and subscribed, after a full GC: RSS, and JS heap + external. */
  rssBytes: number
  heapBytes: number
  /** Broadcasts to the large PoV: deliveries expected and received, and their latency (ms; the worst load generator's percentile). */
  large: { subscribers: number, expected: number, received: number, p50: number, p99: number }
  /** The steady rate to the other PoVs. */
  steady: { rate: number, expected: number, received: number, p50: number, p99: number }
  /** Event-loop delay of the server over the idle window (ms). */
  lag: LagSnapshot
}

/** The soft file limit child processes get (`ulimit -n`), or Infinity. */
export function fileLimit (): number {
  const out = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()
  return out === 'unlimited' ? Infinity : Number(out)
}

/** Why `scenario` cannot run under the file limit here, or `undefined`. */
export function densityRefusal (scenario: DensityScenario, limit = fileLimit()): string | undefined {
  const server = scenario.clients + DESCRIPTOR_MARGIN
  const generator = scenario.perProcess + DESCRIPTOR_MARGIN
  if (server > limit) {
    return `the file limit (ulimit -n) is ${limit}: ${scenario.clients.toLocaleString('en-US')} sockets need about ` +
      `${server.toLocaleString('en-US')} descriptors in the server process; ask for at most ${limit - DESCRIPTOR_MARGIN} (--density-clients)`
  }
  if (generator > limit) return `the file limit (ulimit -n) is ${limit}: ${scenario.perProcess} clients per load generator need ${generator}`
  return undefined
}

type Generators = ChildHandle[]

async function all<T> (generators: Generators, command: string, args: (k: number) => unknown, timeout: number): Promise<T[]> {
  return await Promise.all(generators.map((generator, k) => generator.call<T>(command, args(k), timeout)))
}

/** Publishes from the server process while every load generator waits for its share of the deliveries. */
async function broadcast (
  server: ChildHandle, generators: Generators, request: PublishRequest, expectedOf: (k: number) => number, timeout: number
): Promise<{ expected: number, received: number, p50: number, p99: number }> {
  await all(generators, 'arm', (k) => ({ expected: expectedOf(k) } satisfies ArmRequest), timeout)
  const [, waited] = await Promise.all([
    server.call<PublishResult>('publish', request, timeout),
    all<WaitResult>(generators, 'wait', (k) => ({ expected: expectedOf(k), timeout, settle: 200 }), timeout + 10_000)
  ])
  return {
    expected: generators.reduce((sum, _, k) => sum + expectedOf(k), 0),
    received: waited.reduce((sum, w) => sum + w.received, 0),
    p50: Math.max(...waited.map((w) => w.p50)),
    p99: Math.max(...waited.map((w) => w.p99))
  }
}

/** Plays the density scenario against `target` once, in fresh processes. */
export async function measureDensity (target: Target, scenario: DensityScenario, context: RunContext): Promise<DensityMeasurement> {
  const refusal = densityRefusal(scenario)
  if (refusal) throw new Error(refusal)
  const processes = Math.ceil(scenario.clients / scenario.perProcess)
  const timeout = 600_000
  let server: ChildHandle<{ port: number }> | undefined
  const generators: Generators = []
  try {
    const config = target.config(context, 'density')
    server = await ChildHandle.start<{ port: number }>(SERVER_ENTRY, [JSON.stringify(
      config.kind === 'plugin' ? { ...config, heartbeatInterval: scenario.heartbeatInterval } : config
    )], { name: `${target.id} server`, execArgv: ['--expose-gc'] })
    for (let k = 0; k < processes; k++) generators.push(await ChildHandle.start(LOAD_ENTRY, [], { name: `load generator ${k + 1}` }))
    const connect: ConnectRequest = {
      wire: target.wire,
      endpoints: [{ origin: `http://127.0.0.1:${server.info.port}` }],
      count: scenario.perProcess,
      concurrency: CONNECT_CONCURRENCY,
      secret: target.wire === 'pov' ? context.secret : undefined
    }
    // No warm-up connections (they would upset the even spread over the PoVs): what compiles once is spread over all.
    const idle = await server.call<MemorySnapshot>('memory')
    const cpuBefore = await server.call<CpuSnapshot>('cpu')
    const startedAt = Date.now()
    await all(generators, 'connect', () => connect, timeout)
    const ms = Date.now() - startedAt
    const cpu = (await server.call<CpuSnapshot>('cpu')).cpuMicros - cpuBefore.cpuMicros
    const largePerProcess = Math.floor(scenario.largePov / processes)
    await all(generators, 'subscribe', () => ({ povCount: scenario.povs, extra: { povId: 'large', count: largePerProcess } }), timeout)
    const subscribed = await server.call<MemorySnapshot>('memory')
    const lag = await server.call<LagSnapshot>('lag', { ms: scenario.lagWindow }, scenario.lagWindow + 30_000)
    const large = await broadcast(server, generators, {
      count: scenario.largeBroadcasts, povIds: ['large'], firstSeq: 0, chunk: 1, rate: scenario.largeRate
    }, () => scenario.largeBroadcasts * largePerProcess, timeout)
    const povIds = Array.from({ length: scenario.povs }, (_, i) => `p${i}`)
    const steady = await broadcast(server, generators, {
      count: scenario.steadyBroadcasts, povIds, firstSeq: scenario.largeBroadcasts, chunk: 1, rate: scenario.steadyRate
    }, () => scenario.steadyBroadcasts * scenario.perProcess / scenario.povs, timeout)
    const count = scenario.perProcess * processes
    return {
      target: target.id,
      clients: count,
      povs: scenario.povs,
      loadGenerators: processes,
      perSecond: count / (ms / 1000),
      cpuMicros: cpu / count,
      rssBytes: (subscribed.rss - idle.rss) / count,
      heapBytes: (subscribed.heapUsed + subscribed.external - idle.heapUsed - idle.external) / count,
      large: { subscribers: largePerProcess * processes, ...large },
      steady: { rate: scenario.steadyRate, ...steady },
      lag
    }
  } finally {
    await Promise.all(generators.map((generator) => generator.stop()))
    await server?.stop()
  }
}
