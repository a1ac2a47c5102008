/**
 * The workloads. Client `i` subscribes to PoV `p<i % povs>`, and broadcast `j` goes to `p<j % povs>`, so every
 * broadcast reaches exactly `clients / povs` subscribers, and (`broadcasts` being a multiple of `povs`) every client
 * receives `broadcasts / povs` activities.
 */
export type ScenarioId = 'fan-out' | 'fan-out-burst' | 'topic' | 'selective' | 'selective-small' | 'latency' | 'connections'

export interface Scenario {
  readonly id: ScenarioId
  readonly title: string
  /** What it shows, for the report. */
  readonly about: string
  readonly kind: 'throughput' | 'latency' | 'connections'
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
}

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

/** Seconds, not minutes: just enough to prove every target and every kind of measurement still works. */
const full = (id: ScenarioId) => FULL.find((scenario) => scenario.id === id)!
const SMOKE: readonly Scenario[] = [
  { ...full('fan-out-burst'), clients: 20, warmup: 10, broadcasts: 50 },
  { ...full('selective'), clients: 20, povs: 10, warmup: 10, broadcasts: 50, chunk: 10 },
  { ...full('latency'), clients: 20, povs: 5, warmup: 5, broadcasts: 50, rate: 200 },
  { ...full('connections'), clients: 20, povs: 20, warmup: 5 }
]

export function scenarios (smoke: boolean): readonly Scenario[] {
  return smoke ? SMOKE : FULL
}

/** Connections in flight at once while clients connect. */
export const CONNECT_CONCURRENCY = 50
