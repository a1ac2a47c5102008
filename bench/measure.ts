/**
 * One measurement: a target's server processes and a load generator are started fresh, the scenario is played,
 * and every process is stopped again, whatever happens.
 */
import { fileURLToPath } from 'node:url'
import { ChildHandle } from './ipc.js'
import type { ArmRequest, ConnectRequest, Endpoint, StormResult, WaitResult } from './load-generator.js'
import { CONNECT_CONCURRENCY, expectedDeliveries, type Scenario } from './scenarios.js'
import type { CpuSnapshot, MemorySnapshot, PublishRequest, PublishResult } from './server-process.js'
import type { RunContext, Target } from './targets.js'

const SERVER_ENTRY = fileURLToPath(new URL('./server-process.js', import.meta.url))
const LOAD_ENTRY = fileURLToPath(new URL('./load-generator.js', import.meta.url))

export interface Measurement {
  target: Target['id']
  scenario: Scenario['id']
  trial: number
  /** Throughput and latency scenarios. */
  deliveries?: {
    expected: number
    received: number
    /** `error` messages the clients got (none expected). */
    errors: number
    /** Broadcasts the server failed to publish (none expected), and why the first one failed. */
    failed: number
    firstError?: string
    /** The fewest and the most activities one client received (each should get `expected / clients`). */
    perClient: { min: number, max: number }
    perSecond: number
    /** Server CPU time (all instances, user + system) per delivery, µs. */
    cpuMicros: number
    /** The user part of it (JavaScript, V8, libuv), µs. */
    userMicros: number
    p50: number
    p99: number
    max: number
    /** Feature scenarios: the other messages (presence, typing, `read`) each client received in the measured phase. */
    othersPerClient?: number
    /** Feature scenarios: server CPU per message written (activities and the others), µs. */
    cpuMicrosPerMessage?: number
    /**
     * Read-receipt scenarios: `read` messages each client sent, and the frames telling of moved marks it received
     * (`read` events and unsolicited `reads`), in all and per second.
     */
    readsSentPerClient?: number
    readEventsPerClient?: number
    /** The marks those frames carried (one per `read` event, several per unsolicited `reads`). */
    readMarksPerClient?: number
    readEventsPerClientPerSecond?: number
    /** Load-generator processes the clients were spread over. */
    loadGenerators: number
    /**
     * Cores each side kept busy from the first publication to the last delivery: CPU time ÷ that span. The servers'
     * CPU is that of the whole measured phase (what the last `read` messages and frames cost after the last delivery
     * included, so a slight overestimate); the load generators' runs from `arm` to their last delivery. On a machine
     * of 2 cores, 1.0 on a side means a core of its own, and the two together cannot exceed 2.
     */
    serverCores: number
    loadGeneratorCores: number
  }
  /** The connections scenario (after `warmup` connections that are not counted). */
  connections?: {
    count: number
    perSecond: number
    /** Server CPU time per connection set up, µs. */
    cpuMicros: number
    /** Memory per idle connection after a full GC, bytes: JS heap + external, and RSS. */
    heapBytes: number
    rssBytes: number
    /** Memory added by one subscription per connection, bytes (heap + external). */
    subscriptionHeapBytes: number
  }
  /** The storm scenarios. */
  storm?: {
    clients: number
    /** Until every client had `subscribed` (and, presence on, a complete member list). */
    ms: number
    subscribed: number
    /** Clients with a complete member list (presence on; with it off, those subscribed). */
    settled: number
    /** Server CPU time over the storm, ms, and per client, µs. */
    cpuMs: number
    cpuMicrosPerClient: number
    messagesPerClient: number
    bytesPerClient: number
    members: { min: number, max: number }
  }
}

export interface MeasureOptions {
  /** Write a `.cpuprofile` of each server instance's measured phase here (`<file>.<instance>.cpuprofile`). */
  profileFile?: string
  /** Deadline for the clients to receive what was published. Default 120 s. */
  deliveryTimeout?: number
  /** Called right before and right after the measured phase of a throughput scenario (to read Redis's counters). */
  measuredPhase?: { before (): Promise<void>, after (): Promise<void> }
}

type Servers = Array<ChildHandle<{ port: number }>>
/** The load-generator processes; client `i` of the scenario is in the one `floor(i / (clients / loads.length))`. */
type Loads = ChildHandle[]

/** Each load generator's share of `total` (the clients, or the deliveries): equal, as `loadGeneratorsRefusal` ensures. */
function shares (loads: Loads, total: number): number[] {
  return loads.map(() => total / loads.length)
}

/**
 * Why `scenario` cannot be spread over `generators` load generators, or `undefined`: each must hold as many clients,
 * and as many of each PoV (client `i` of a generator watches `p<i % povs>`), and storms and the connections scenario
 * are played by one.
 */
export function loadGeneratorsRefusal (scenario: Scenario, generators: number): string | undefined {
  if (generators === 1) return undefined
  if (scenario.kind === 'storm' || scenario.kind === 'connections') return `${scenario.id} is played by one load generator`
  const each = scenario.clients / generators
  if (!Number.isInteger(each) || each % scenario.povs !== 0) {
    return `${scenario.clients} clients over ${scenario.povs} PoVs do not split evenly over ${generators} load generators`
  }
  return undefined
}

/** What several load generators waited for, as one: counts summed, times and percentiles the worst one's. */
function mergeWaits (waits: readonly WaitResult[]): WaitResult {
  const sum = (of: (w: WaitResult) => number) => waits.reduce((total, w) => total + of(w), 0)
  const max = (of: (w: WaitResult) => number) => Math.max(...waits.map(of))
  return {
    received: sum((w) => w.received),
    lastAt: max((w) => w.lastAt),
    p50: max((w) => w.p50),
    p99: max((w) => w.p99),
    max: max((w) => w.max),
    errors: sum((w) => w.errors),
    perClient: { min: Math.min(...waits.map((w) => w.perClient.min)), max: max((w) => w.perClient.max) },
    others: sum((w) => w.others),
    readEvents: sum((w) => w.readEvents),
    readMarks: sum((w) => w.readMarks),
    lastReadAt: max((w) => w.lastReadAt),
    cpuMicros: sum((w) => w.cpuMicros)
  }
}

/** Starts the V8 profiler in every instance, when asked to profile. */
async function startProfiling (servers: Servers, options: MeasureOptions): Promise<void> {
  if (options.profileFile) await Promise.all(servers.map((server) => server.call('profileStart')))
}

/** Stops the profilers and writes `<profileFile>.<instance>.cpuprofile`. */
async function stopProfiling (servers: Servers, options: MeasureOptions): Promise<void> {
  const file = options.profileFile
  if (file) await Promise.all(servers.map((server, k) => server.call('profileStop', { file: `${file}.${k}.cpuprofile` })))
}

/** CPU time of all the instances together, µs. */
async function totalCpu (servers: Servers): Promise<{ cpu: number, user: number }> {
  const snapshots = await Promise.all(servers.map((server) => server.call<CpuSnapshot>('cpu')))
  return snapshots.reduce((sum, snapshot) => ({ cpu: sum.cpu + snapshot.cpuMicros, user: sum.user + snapshot.userMicros }), { cpu: 0, user: 0 })
}

async function totalMemory (servers: Servers): Promise<MemorySnapshot> {
  const snapshots = await Promise.all(servers.map((server) => server.call<MemorySnapshot>('memory')))
  return snapshots.reduce((sum, m) => ({ rss: sum.rss + m.rss, heapUsed: sum.heapUsed + m.heapUsed, external: sum.external + m.external }))
}

const heapOf = (memory: MemorySnapshot) => memory.heapUsed + memory.external

/** Publishes `count` broadcasts from the instances together (each its share) and waits for the deliveries. */
async function broadcastAndWait (
  servers: Servers, loads: Loads, scenario: Scenario, count: number, firstSeq: number, timeout: number,
  extras: Omit<ArmRequest, 'expected'> = {}
): Promise<{ published: PublishResult[], waited: WaitResult, expected: number }> {
  const expected = expectedDeliveries(scenario, count)
  const expectedOf = shares(loads, expected)
  await Promise.all(loads.map((load, k) => load.call('arm', { expected: expectedOf[k]!, ...extras } satisfies ArmRequest)))
  const povIds = Array.from({ length: scenario.povs }, (_, i) => `p${i}`)
  const share = Math.ceil(count / servers.length)
  const publishing = Promise.all(servers.map((server, k) => {
    const request: PublishRequest = {
      count: Math.min(share, count - k * share),
      povIds,
      firstSeq: firstSeq + k * share,
      chunk: scenario.chunk,
      rate: scenario.rate === undefined ? undefined : scenario.rate / servers.length
    }
    return server.call<PublishResult>('publish', request, timeout)
  }))
  const [published, waits] = await Promise.all([
    publishing,
    Promise.all(loads.map((load, k) => load.call<WaitResult>('wait', { expected: expectedOf[k]!, timeout, settle: 200 }, timeout + 10_000)))
  ])
  return { published, waited: mergeWaits(waits), expected }
}

/** What a feature scenario has the clients do besides receiving, when the target has the feature on. */
function clientExtras (target: Target, scenario: Scenario): Omit<ArmRequest, 'expected'> {
  return {
    chatter: target.features?.presence ? scenario.chatter : undefined,
    readEach: Boolean(target.features?.readReceipts && scenario.readEach)
  }
}

async function measureDeliveries (
  servers: Servers, loads: Loads, target: Target, scenario: Scenario, options: MeasureOptions
): Promise<NonNullable<Measurement['deliveries']>> {
  const timeout = options.deliveryTimeout ?? 120_000
  const extras = clientExtras(target, scenario)
  await Promise.all(loads.map((load) => load.call('subscribe', { povCount: scenario.povs }, timeout)))
  // A feature scenario starts once what the subscriptions set off (the presence join storm) is over.
  if (scenario.targets) await Promise.all(loads.map((load) => load.call('quiet', { ms: 300, timeout: 30_000 }, 40_000)))
  if (scenario.warmup > 0) await broadcastAndWait(servers, loads, scenario, scenario.warmup, 0, timeout, extras)
  await startProfiling(servers, options)
  await options.measuredPhase?.before()
  const cpuBefore = await totalCpu(servers)
  const { published, waited, expected } = await broadcastAndWait(servers, loads, scenario, scenario.broadcasts, scenario.warmup, timeout, extras)
  const cpuAfter = await totalCpu(servers)
  await options.measuredPhase?.after()
  await stopProfiling(servers, options)
  const startedAt = Math.min(...published.map((result) => result.startedAt))
  const spanMicros = Math.max(1, (waited.lastAt - startedAt) * 1000)
  return {
    expected,
    received: waited.received,
    errors: waited.errors,
    failed: published.reduce((sum, result) => sum + result.failed, 0),
    firstError: published.find((result) => result.firstError)?.firstError,
    perClient: waited.perClient,
    perSecond: waited.received / ((waited.lastAt - startedAt) / 1000),
    cpuMicros: (cpuAfter.cpu - cpuBefore.cpu) / Math.max(1, waited.received),
    userMicros: (cpuAfter.user - cpuBefore.user) / Math.max(1, waited.received),
    p50: waited.p50,
    p99: waited.p99,
    max: waited.max,
    loadGenerators: loads.length,
    serverCores: (cpuAfter.cpu - cpuBefore.cpu) / spanMicros,
    loadGeneratorCores: waited.cpuMicros / spanMicros,
    ...(scenario.targets
      ? { othersPerClient: waited.others / scenario.clients, cpuMicrosPerMessage: (cpuAfter.cpu - cpuBefore.cpu) / Math.max(1, waited.received + waited.others) }
      : {}),
    ...(scenario.readEach
      ? {
          readsSentPerClient: extras.readEach ? waited.received / scenario.clients : 0,
          readEventsPerClient: waited.readEvents / scenario.clients,
          readMarksPerClient: waited.readMarks / scenario.clients,
          readEventsPerClientPerSecond: waited.readEvents === 0 ? 0 : waited.readEvents / scenario.clients / ((waited.lastReadAt - startedAt) / 1000)
        }
      : {})
  }
}

/**
 * A storm: the clients are connected and (as warm-up, not measured) storm a PoV once; then either they all subscribe
 * to another PoV at once, or (`reconnect`) they all drop and connect again to subscribe to the same one.
 */
async function measureStorm (
  servers: Servers, load: ChildHandle, target: Target, connect: ConnectRequest, scenario: Scenario
): Promise<NonNullable<Measurement['storm']>> {
  const presence = Boolean(target.features?.presence)
  const timeout = 120_000
  await load.call('connect', connect, timeout)
  const povId = 'p0'
  await load.call<StormResult>('storm', { povId: scenario.reconnect ? povId : 'warm-up', presence, timeout, settle: 300 }, timeout + 10_000)
  await load.call('quiet', { ms: 300, timeout: 30_000 }, 40_000)
  const cpuBefore = await totalCpu(servers)
  const result = await load.call<StormResult>('storm', {
    povId, presence, timeout, settle: 300, reconnect: scenario.reconnect ? connect : undefined
  }, timeout + 10_000)
  const cpu = (await totalCpu(servers)).cpu - cpuBefore.cpu
  const clients = connect.count
  return {
    clients,
    ms: result.ms,
    subscribed: result.subscribed,
    settled: result.settled,
    cpuMs: cpu / 1000,
    cpuMicrosPerClient: cpu / clients,
    messagesPerClient: result.messages / clients,
    bytesPerClient: result.bytes / clients,
    members: result.members
  }
}

async function measureConnections (
  servers: Servers, load: ChildHandle, connect: ConnectRequest, scenario: Scenario, options: MeasureOptions
): Promise<NonNullable<Measurement['connections']>> {
  // Warm-up connections first (kept open): code paths compiled and lazily created state exists before the baseline.
  if (scenario.warmup > 0) await load.call('connect', { ...connect, count: scenario.warmup }, 120_000)
  const idle = await totalMemory(servers)
  await startProfiling(servers, options)
  const cpuBefore = await totalCpu(servers)
  const { ms } = await load.call<{ ms: number }>('connect', connect, 120_000)
  const cpuMicros = (await totalCpu(servers)).cpu - cpuBefore.cpu
  await stopProfiling(servers, options)
  const connected = await totalMemory(servers)
  await load.call('subscribe', { povCount: scenario.povs }, 120_000)
  const subscribed = await totalMemory(servers)
  const count = connect.count
  const subscriptions = count + scenario.warmup
  return {
    count,
    perSecond: count / (ms / 1000),
    cpuMicros: cpuMicros / count,
    heapBytes: (heapOf(connected) - heapOf(idle)) / count,
    rssBytes: (connected.rss - idle.rss) / count,
    subscriptionHeapBytes: (heapOf(subscribed) - heapOf(connected)) / subscriptions
  }
}

/** Plays `scenario` against `target` once, in fresh processes. */
export async function measure (
  target: Target, scenario: Scenario, trial: number, context: RunContext, options: MeasureOptions = {}
): Promise<Measurement> {
  const servers: Servers = []
  const loads: Loads = []
  const trialKey = `${scenario.id}-${trial}`
  try {
    for (let k = 0; k < target.instances; k++) {
      servers.push(await ChildHandle.start<{ port: number }>(SERVER_ENTRY, [JSON.stringify(target.config(context, trialKey))], {
        name: `${target.id} server${target.instances > 1 ? ` ${k + 1}` : ''}`,
        execArgv: ['--expose-gc']
      }))
    }
    const generators = scenario.loadGenerators ?? 1
    const refusal = loadGeneratorsRefusal(scenario, generators)
    if (refusal) throw new Error(refusal)
    for (let k = 0; k < generators; k++) {
      loads.push(await ChildHandle.start(LOAD_ENTRY, [], { name: `load generator${generators > 1 ? ` ${k + 1}` : ''}` }))
    }
    const load = loads[0]!
    const endpoints: Endpoint[] = servers.map((server) => ({ origin: `http://127.0.0.1:${server.info.port}` }))
    const connect: ConnectRequest = {
      wire: target.wire,
      endpoints,
      count: scenario.clients,
      concurrency: CONNECT_CONCURRENCY,
      secret: target.wire === 'pov' ? context.secret : undefined
    }
    const measurement: Measurement = { target: target.id, scenario: scenario.id, trial }
    if (scenario.kind === 'connections') {
      measurement.connections = await measureConnections(servers, load, connect, scenario, options)
    } else if (scenario.kind === 'storm') {
      measurement.storm = await measureStorm(servers, load, target, connect, scenario)
    } else {
      const clientsOf = shares(loads, scenario.clients)
      await Promise.all(loads.map((generator, k) => generator.call('connect', { ...connect, count: clientsOf[k]!, firstUser: k * clientsOf[k]! }, 120_000)))
      measurement.deliveries = await measureDeliveries(servers, loads, target, scenario, options)
    }
    return measurement
  } finally {
    await Promise.all(loads.map((generator) => generator.stop()))
    await Promise.all(servers.map((server) => server.stop()))
    await target.cleanup?.(context, trialKey)
  }
}
