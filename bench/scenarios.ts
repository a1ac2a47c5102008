/**
 * The workloads. Client `i` subscribes to PoV `p<i % povs>`, and broadcast `j` goes to `p<j % povs>`, so every
 * broadcast reaches exactly `clients / povs` subscribers, and (`broadcasts` being a multiple of `povs`) every client
 * receives `broadcasts / povs` activities.
 */
import { availableParallelism } from 'node:os'
import type { TargetId } from './targets.js'

export type ScenarioId = 'fan-out' | 'fan-out-burst' | 'topic' | 'selective' | 'selective-small' | 'latency' | 'connections'
  | 'presence-storm' | 'presence-reconnect-storm' | 'presence-fan-out' | 'presence-topic' | 'read-receipts' | 'read-receipts-steady'
  | 'publish-heavy'

export interface Scenario {
  readonly id: ScenarioId
  readonly title: string
  /** What it shows, for the report. */
  readonly about: string
  readonly kind: 'throughput' | 'latency' | 'connections' | 'storm'
  readonly clients: number
  readonly povs: number
  /** Broadcasts (connections, in the connections scenario) before the measurement, for JIT warm-up; not counted. */
  readonly warmup: number
  /** Broadcasts measured. */
  readonly broadcasts: number
  /** Broadcasts per event-loop turn in a burst. */
  readonly chunk: number
  /** Broadcasts per second, for the fixed-rate scenario. */
  readonly rate?: number
  /** Whether `--experiments` plays it against the plain-ws technique variants too. */
  readonly experiments?: boolean
  /**
   * A feature scenario (`--features`): played only against these targets, the plugin with the feature off first, and
   * reported in a section of its own.
   */
  readonly targets?: readonly TargetId[]
  /** Storm: all clients drop and reconnect at once (after a join storm that is not measured) instead of joining. */
  readonly reconnect?: boolean
  /** With presence on: this many subscribers toggle their status and type every `intervalMs` while activities flow. */
  readonly chatter?: { readonly members: number, readonly intervalMs: number }
  /** With read receipts on: every client marks each activity it receives read. */
  readonly readEach?: boolean
  /**
   * Load-generator processes the clients are spread over evenly (default 1; throughput and latency scenarios only),
   * for a scenario whose clients do more than one process can keep up with, so that it measures the server.
   */
  readonly loadGenerators?: number
}

/** Connections in flight at once while clients connect. */
export const CONNECT_CONCURRENCY = 50

/** Deliveries a run of `broadcasts` broadcasts must produce. */
export function expectedDeliveries (scenario: Scenario, broadcasts: number): number {
  return broadcasts * (scenario.clients / scenario.povs)
}

const FULL: readonly Scenario[] = [
  {
    id: 'fan-out',
    title: 'Pure fan-out',
    about: '2,000 clients on one PoV; bursts of broadcasts, each to all of them',
    kind: 'throughput',
    clients: 2000,
    povs: 1,
    warmup: 20,
    broadcasts: 200,
    chunk: 1,
    experiments: true
  },
  {
    id: 'fan-out-burst',
    title: 'Pure fan-out, 10 broadcasts per tick',
    about: 'the same 2,000 clients on one PoV, 10 broadcasts in each event-loop turn (a batch import, or a broker ' +
      'handing over several messages from one read): what writing several frames to a socket at once is worth',
    kind: 'throughput',
    clients: 2000,
    povs: 1,
    warmup: 20,
    broadcasts: 200,
    chunk: 10,
    experiments: true
  },
  {
    id: 'topic',
    title: 'Topic fan-out',
    about: '1,000 clients over 100 PoVs (10 subscribers each); broadcasts round robin over the PoVs',
    kind: 'throughput',
    clients: 1000,
    povs: 100,
    warmup: 500,
    broadcasts: 5000,
    chunk: 10
  },
  {
    id: 'selective',
    title: 'Selective, 2,000 clients',
    about: '2,000 clients, 1,000 PoVs, 2 subscribers each: each broadcast reaches 2 of 2,000 sockets',
    kind: 'throughput',
    clients: 2000,
    povs: 1000,
    warmup: 2000,
    broadcasts: 25000,
    chunk: 50
  },
  {
    id: 'selective-small',
    title: 'Selective, 200 clients',
    about: 'the same with 200 clients over 100 PoVs: cost per delivery should not depend on the clients not addressed',
    kind: 'throughput',
    clients: 200,
    povs: 100,
    warmup: 2000,
    broadcasts: 25000,
    chunk: 50
  },
  {
    id: 'latency',
    title: 'Latency at a fixed rate',
    about: '1,000 clients over 100 PoVs, 500 broadcasts/s for 6 s (5,000 deliveries/s), well below every target\'s capacity',
    kind: 'latency',
    clients: 1000,
    povs: 100,
    warmup: 250,
    broadcasts: 3000,
    chunk: 1,
    rate: 500
  },
  {
    id: 'connections',
    title: 'Connection set-up and idle memory',
    about: '1,000 clients connect (50 at a time; for the plugin: token fetch + authenticated upgrade), then each subscribes to a PoV of its own',
    kind: 'connections',
    clients: 1000,
    povs: 1000,
    warmup: 100,
    broadcasts: 0,
    chunk: 1
  }
]

/**
 * One load generator per core the server leaves (at least one, and a divisor of `clients` so that each holds as many):
 * on 2 cores one, on 4 cores three, …. More than that only takes CPU from the server they load.
 */
function spareCoreLoadGenerators (clients: number): number {
  let generators = Math.max(1, availableParallelism() - 1)
  while (clients % generators !== 0) generators--
  return generators
}

const READS_LOAD_GENERATORS = spareCoreLoadGenerators(200)

const PRESENCE_TARGETS: readonly TargetId[] = ['plugin', 'plugin-presence']
const READS_TARGETS: readonly TargetId[] = ['plugin', 'plugin-reads']

/** What the optional features cost (`--features`): each against the plugin with the feature off and on. */
const FEATURES: readonly Scenario[] = [
  {
    id: 'presence-storm',
    title: 'Join storm',
    about: '500 clients of distinct users subscribe to one PoV at once (after the same storm on another PoV, as warm-up)',
    kind: 'storm',
    clients: 500,
    povs: 1,
    warmup: 0,
    broadcasts: 0,
    chunk: 1,
    targets: PRESENCE_TARGETS
  },
  {
    id: 'presence-reconnect-storm',
    title: 'Reconnect storm',
    about: 'the same 500 clients, all subscribed to one PoV, drop at once, then reconnect (token fetch and upgrade, ' +
      `${CONNECT_CONCURRENCY} at a time) and subscribe again`,
    kind: 'storm',
    clients: 500,
    povs: 1,
    warmup: 0,
    broadcasts: 0,
    chunk: 1,
    targets: PRESENCE_TARGETS,
    reconnect: true
  },
  {
    ...FULL[0]!,
    id: 'presence-fan-out',
    title: 'Pure fan-out, presence on',
    about: '2,000 clients on one PoV, bursts of broadcasts to all of them; with presence on, 4 of them switch between ' +
      'active and idle and type every 250 ms meanwhile (each time a `presence_diff` and a `typing` event to their PoV)',
    experiments: false,
    targets: PRESENCE_TARGETS,
    chatter: { members: 4, intervalMs: 250 }
  },
  {
    ...FULL[2]!,
    id: 'presence-topic',
    title: 'Topic fan-out, presence on',
    about: '1,000 clients over 100 PoVs, broadcasts round robin; with presence on, 10 of them (on 10 PoVs) switch ' +
      'between active and idle and type every 250 ms meanwhile (each time a `presence_diff` and a `typing` event to their PoV)',
    targets: PRESENCE_TARGETS,
    chatter: { members: 10, intervalMs: 250 }
  },
  {
    id: 'read-receipts',
    title: 'Read receipts, a busy PoV',
    about: '200 clients of distinct users on one PoV, bursts of broadcasts; with read receipts on, every client sends ' +
      '`read` for each activity it receives; the clients are spread over one load-generator process per core the server ' +
      `leaves (${READS_LOAD_GENERATORS} here)`,
    kind: 'throughput',
    clients: 200,
    povs: 1,
    warmup: 20,
    broadcasts: 200,
    chunk: 1,
    targets: READS_TARGETS,
    readEach: true,
    loadGenerators: READS_LOAD_GENERATORS
  },
  {
    id: 'read-receipts-steady',
    title: 'Read receipts, a steady PoV',
    about: '200 clients on one PoV, 20 activities/s for 5 s; with read receipts on, every client sends `read` for each ' +
      'activity it receives (about one move per user per 50 ms coalescing window, unless the server lags)',
    kind: 'latency',
    clients: 200,
    povs: 1,
    warmup: 10,
    broadcasts: 100,
    chunk: 1,
    rate: 20,
    targets: READS_TARGETS,
    readEach: true
  }
]

/** Seconds, not minutes: just enough to prove every target and every kind of measurement still works. */
const full = (id: ScenarioId) => [...FULL, ...FEATURES].find((scenario) => scenario.id === id)!
const SMOKE: readonly Scenario[] = [
  { ...full('fan-out-burst'), clients: 20, warmup: 10, broadcasts: 50 },
  { ...full('selective'), clients: 20, povs: 10, warmup: 10, broadcasts: 50, chunk: 10 },
  { ...full('latency'), clients: 20, povs: 5, warmup: 5, broadcasts: 50, rate: 200 },
  { ...full('connections'), clients: 20, povs: 20, warmup: 5 }
]
const SMOKE_FEATURES: readonly Scenario[] = [
  { ...full('presence-storm'), clients: 20 },
  { ...full('presence-reconnect-storm'), clients: 20 },
  { ...full('presence-topic'), clients: 20, povs: 5, warmup: 10, broadcasts: 50, chunk: 10, chatter: { members: 3, intervalMs: 50 } },
  // Two load generators, so that the smoke run plays the spread over several too.
  { ...full('read-receipts'), clients: 20, warmup: 10, broadcasts: 50, loadGenerators: 2 },
  { ...full('read-receipts-steady'), clients: 10, warmup: 5, broadcasts: 20, rate: 100 }
]

/** The main comparison's scenarios, or (`features`) those of the optional features. */
export function scenarios (smoke: boolean, features = false): readonly Scenario[] {
  if (features) return smoke ? SMOKE_FEATURES : FEATURES
  return smoke ? SMOKE : FULL
}

/**
 * What sharding is for (`--sharding`): many PoVs, each watched on all three instances (client `i` is on instance
 * `i % 3` and watches `p<i % povs>`, and `povs` is not a multiple of 3), and a stream of broadcasts from the three
 * instances. Each activity is one publish script on its PoV's shard and one pub/sub message to each instance; the
 * sockets' own work is small (3 deliveries per broadcast), so Redis's share of the work is large.
 */
const PUBLISH_HEAVY: Scenario = {
  id: 'publish-heavy',
  title: 'Publish-heavy, 3 instances',
  about: '600 clients over 200 PoVs (3 subscribers each, one on each instance); 20,000 broadcasts round robin over the ' +
    'PoVs from the 3 instances, 30 per event-loop turn on each',
  kind: 'throughput',
  clients: 600,
  povs: 200,
  warmup: 2000,
  broadcasts: 20_000,
  chunk: 30
}
const PUBLISH_HEAVY_SMOKE: Scenario = {
  ...PUBLISH_HEAVY,
  about: 'smoke size: 30 clients over 10 PoVs (3 subscribers each, one on each instance), 300 broadcasts',
  clients: 30,
  povs: 10,
  warmup: 30,
  broadcasts: 300,
  chunk: 10
}

/** The sharding comparison's scenario. */
export function publishHeavyScenario (smoke: boolean): Scenario {
  return smoke ? PUBLISH_HEAVY_SMOKE : PUBLISH_HEAVY
}
