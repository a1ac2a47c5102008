/**
 * `npm run bench -- --sharding`: what a 3-shard Redis Cluster buys. The publish-heavy scenario is played by three
 * plugin instances against one stand-alone Redis and against a cluster of three masters (and their replicas), both
 * started here on free ports and stopped by pid at the end, trials alternating. Around the measured phase each
 * Redis node's counters are read (`INFO cpu`, `stats`, `commandstats`, `replication`), so the report gives, per node,
 * the Redis CPU and the bytes it wrote to clients (the pub/sub messages to the instances, plus the scripts' short
 * replies) and to its replica, and the deliveries/s of the three instances in both set-ups.
 */
import { Redis } from 'ioredis'
import { measure, type Measurement } from './measure.js'
import { cell, number } from './report.js'
import {
  infoValue, missingRedisTools, REDIS_TOOLS_HINT, startRedisClusterNodes, startStandaloneRedis,
  type RedisClusterNodes, type StandaloneRedis
} from './redis-servers.js'
import { publishHeavyScenario, type Scenario } from './scenarios.js'
import { redisBrokerMissing } from './servers/plugin.js'
import { spread } from './statistics.js'
import { targetById, type RunContext, type Target } from './targets.js'

export type Deployment = 'one Redis' | 'cluster'

/** What one Redis node's counters say (`INFO`), read before and after the measured phase. */
interface Counters {
  role: 'master' | 'replica'
  /** used_cpu_sys + used_cpu_user, s. */
  cpuSeconds: number
  /**
   * Bytes written to clients: the pub/sub messages to the instances and the replies to their commands
   * (total_net_output_bytes less total_net_repl_output_bytes: Redis 7.0 counts what it sends its replicas in both).
   */
  outputBytes: number
  /** Bytes read from clients: the publish scripts and their arguments (total_net_input_bytes less the replicas' part). */
  inputBytes: number
  /** total_net_repl_output_bytes: to the replicas. */
  replicationBytes: number
  /** PUBLISH and SPUBLISH calls (the publish scripts make them). */
  publishes: number
  /** Reads from client connections (total_reads_processed): a pipeline of several commands arrives in one read. */
  reads: number
  /** Channels subscribed at the end (classic and sharded). */
  channels: number
  /** Calls of each command (`INFO commandstats`, scripts' own calls included). */
  commands: Record<string, number>
}

/** One Redis node's counters over the measured phase. */
export interface NodeTraffic extends Counters {
  port: number
  /** PoVs of the scenario whose slot this master owns (all of them on one Redis). */
  povs: number
}

export interface ShardingMeasurement {
  deployment: Deployment
  trial: number
  deliveries: NonNullable<Measurement['deliveries']>
  nodes: NodeTraffic[]
}

function parseCounters (text: string): Counters {
  const value = (field: string) => Number(infoValue(text, field) ?? 0)
  const calls = (command: string) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0)
  return {
    role: infoValue(text, 'role') === 'master' ? 'master' : 'replica',
    cpuSeconds: value('used_cpu_sys') + value('used_cpu_user'),
    outputBytes: value('total_net_output_bytes') - value('total_net_repl_output_bytes'),
    inputBytes: value('total_net_input_bytes') - value('total_net_repl_input_bytes'),
    replicationBytes: value('total_net_repl_output_bytes'),
    publishes: calls('publish') + calls('spublish'),
    reads: value('total_reads_processed'),
    channels: value('pubsub_channels') + value('pubsubshard_channels'),
    commands: Object.fromEntries([...text.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)].map(([, command, count]) => [command!, Number(count)]))
  }
}

/** Reads every node's counters before and after the measured phase, over one connection per node. */
class NodeCounters {
  readonly #clients: Array<{ port: number, client: Redis }>
  #before = new Map<number, Counters>()
  #after = new Map<number, Counters>()

  constructor (ports: readonly number[]) {
    this.#clients = ports.map((port) => ({ port, client: new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 }) }))
  }

  async #read (): Promise<Map<number, Counters>> {
    const texts = await Promise.all(this.#clients.map(({ client }) => client.call('INFO', 'cpu', 'stats', 'commandstats', 'replication') as Promise<string>))
    return new Map(this.#clients.map(({ port }, k) => [port, parseCounters(texts[k]!)]))
  }

  readonly phase = {
    before: async () => { this.#before = await this.#read() },
    after: async () => { this.#after = await this.#read() }
  }

  /** Each node's counters over the phase; `povsOf` says how many of the PoVs a master owns. */
  traffic (povsOf: (port: number) => number): NodeTraffic[] {
    return this.#clients.map(({ port }) => {
      const before = this.#before.get(port)!
      const after = this.#after.get(port)!
      return {
        port,
        role: after.role,
        povs: after.role === 'master' ? povsOf(port) : 0,
        cpuSeconds: after.cpuSeconds - before.cpuSeconds,
        outputBytes: after.outputBytes - before.outputBytes,
        inputBytes: after.inputBytes - before.inputBytes,
        replicationBytes: after.replicationBytes - before.replicationBytes,
        publishes: after.publishes - before.publishes,
        reads: after.reads - before.reads,
        channels: after.channels,
        commands: Object.fromEntries(Object.entries(after.commands)
          .map(([command, count]) => [command, count - (before.commands[command] ?? 0)])
          .filter(([, count]) => count !== 0))
      }
    })
  }

  close (): void {
    for (const { client } of this.#clients) client.disconnect()
  }
}

/** How many of `povIds` each master of the cluster owns (by the slot of their `{povId}` hash tag). */
async function povsPerMaster (cluster: RedisClusterNodes, povIds: readonly string[]): Promise<Map<number, number>> {
  const client = new Redis({ ...cluster.startupNodes[0]!, maxRetriesPerRequest: 1 })
  try {
    const ranges = await client.cluster('SLOTS')
    const counts = new Map<number, number>()
    for (const povId of povIds) {
      const slot = await client.cluster('KEYSLOT', povId) as number
      const port = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
      if (port !== undefined) counts.set(port, (counts.get(port) ?? 0) + 1)
    }
    return counts
  } finally {
    client.disconnect()
  }
}

/** Why `--sharding` cannot run here (said loudly, before anything starts), or `undefined`. */
export function shardingRefusal (root: string): string | undefined {
  const missing = missingRedisTools()
  if (missing.length > 0) {
    return `${missing.join(' and ')} missing: --sharding starts a stand-alone Redis and a 3-master Redis Cluster of its ` +
      `own and needs both. Install them with \`${REDIS_TOOLS_HINT}\`.`
  }
  return redisBrokerMissing(root)
}

/** Plays the publish-heavy scenario `trials` times on each deployment, alternating, and reads the nodes' counters. */
export async function measureSharding (context: RunContext, smoke: boolean, trials: number): Promise<{ scenario: Scenario, measurements: ShardingMeasurement[] }> {
  const refusal = shardingRefusal(context.root)
  if (refusal) throw new Error(refusal)
  const scenario = publishHeavyScenario(smoke)
  const povIds = Array.from({ length: scenario.povs }, (_, i) => `p${i}`)
  let standalone: StandaloneRedis | undefined
  let cluster: RedisClusterNodes | undefined
  try {
    console.log('starting a stand-alone Redis and a Redis Cluster (3 masters, 3 replicas) on free ports')
    standalone = await startStandaloneRedis()
    cluster = await startRedisClusterNodes()
    const owned = await povsPerMaster(cluster, povIds)
    console.log(`PoVs per cluster master: ${[...owned.values()].join(', ')} of ${scenario.povs}`)
    const clusterContext: RunContext = { ...context, redisCluster: cluster.startupNodes }
    const clusterTarget = targetById('plugin-redis-cluster')
    const redisUrl = standalone.url
    // The same three instances on the one Redis: the plugin-redis target with three instances, on the Redis started here.
    const oneRedisTarget: Target = {
      ...targetById('plugin-redis'),
      label: 'fastify-pov-realtime, one Redis, 3 instances',
      instances: 3,
      cleanup: undefined
    }
    const setups = [
      { deployment: 'one Redis' as const, target: oneRedisTarget, context: { ...context, redisUrl }, ports: [standalone.port], povsOf: () => scenario.povs },
      { deployment: 'cluster' as const, target: clusterTarget, context: clusterContext, ports: cluster.nodes.map((node) => node.port), povsOf: (port: number) => owned.get(port) ?? 0 }
    ]
    const measurements: ShardingMeasurement[] = []
    for (let trial = 1; trial <= trials; trial++) {
      for (const setup of trial % 2 ? setups : [...setups].reverse()) {
        const counters = new NodeCounters(setup.ports)
        try {
          const measurement = await measure(setup.target, scenario, trial, setup.context, { measuredPhase: counters.phase })
          const result = { deployment: setup.deployment, trial, deliveries: measurement.deliveries!, nodes: counters.traffic(setup.povsOf) }
          measurements.push(result)
          console.log(`  trial ${trial} ${setup.deployment}: ${describeSharding(result)}`)
        } catch (err) {
          console.error(`  trial ${trial} ${setup.deployment}: FAILED: ${err instanceof Error ? err.message : String(err)}`)
        } finally {
          counters.close()
        }
      }
    }
    return { scenario, measurements }
  } finally {
    await cluster?.stop()
    await standalone?.stop()
  }
}

const mib = (bytes: number) => number(bytes / 2 ** 20, 1)

function describeSharding (m: ShardingMeasurement): string {
  const d = m.deliveries
  const nodes = m.nodes.filter((node) => node.role === 'master')
    .map((node) => `${node.port}: ${node.povs} PoVs, ${node.publishes} publishes, ${mib(node.outputBytes)} MiB to clients, ` +
      `${mib(node.replicationBytes)} MiB to its replica, ${number(node.cpuSeconds, 2)} s CPU`)
  return `${d.received}/${d.expected} delivered, ${Math.round(d.perSecond).toLocaleString('en-US')}/s, ` +
    `${d.cpuMicros.toFixed(1)} µs instance CPU/delivery; masters: ${nodes.join('; ')}`
}

export interface ShardingRunInfo {
  header: string
  scenario: Scenario
}

/** The "sharding" section of docs/benchmarks.md. */
export function renderSharding (info: ShardingRunInfo, measurements: readonly ShardingMeasurement[]): string {
  const of = (deployment: Deployment) => measurements.filter((m) => m.deployment === deployment)
  const masters = (m: ShardingMeasurement) => m.nodes.filter((node) => node.role === 'master')
  const replicas = (m: ShardingMeasurement) => m.nodes.filter((node) => node.role === 'replica')
  const sum = (nodes: readonly NodeTraffic[], field: 'cpuSeconds' | 'outputBytes' | 'inputBytes' | 'replicationBytes') =>
    nodes.reduce((total, node) => total + node[field], 0)
  const oneNode = (m: ShardingMeasurement) => masters(m)[0]!
  /** The cluster figure ÷ the one-Redis figure of the same trial, over the trials. */
  const ratio = (metric: (m: ShardingMeasurement) => number) => spread(of('cluster').map((m) => {
    const paired = of('one Redis').find((o) => o.trial === m.trial)
    return paired ? metric(m) / metric(paired) : NaN
  }))
  const over = (deployment: Deployment, metric: (m: ShardingMeasurement) => number) => spread(of(deployment).map(metric))

  // Per node: the cluster's masters are the same ports in every trial.
  const nodeRows: string[] = []
  for (const deployment of ['one Redis', 'cluster'] as const) {
    const ports = [...new Set(of(deployment).flatMap((m) => masters(m).map((node) => node.port)))]
    ports.forEach((port, k) => {
      const node = (m: ShardingMeasurement) => masters(m).find((n) => n.port === port)
      const metric = (field: keyof NodeTraffic) => spread(of(deployment).map((m) => Number(node(m)?.[field] ?? NaN)))
      const perTrialRatio = deployment === 'cluster'
        ? ratio((m) => m.deployment === 'cluster' ? node(m)?.outputBytes ?? NaN : oneNode(m).outputBytes)
        : undefined
      const cpuRatio = deployment === 'cluster'
        ? ratio((m) => m.deployment === 'cluster' ? node(m)?.cpuSeconds ?? NaN : oneNode(m).cpuSeconds)
        : undefined
      nodeRows.push(`| ${deployment === 'cluster' ? `cluster master ${k + 1}` : 'one Redis'} | ${cell(metric('povs'), 0)} | ` +
        `${cell(metric('publishes'), 0)} | ${cell(spread(of(deployment).map((m) => (node(m)?.publishes ?? NaN) / (node(m)?.reads ?? NaN))), 1)} | ` +
        `${cell(spread(of(deployment).map((m) => (node(m)?.outputBytes ?? NaN) / 2 ** 20)), 1)} | ` +
        `${cell(spread(of(deployment).map((m) => (node(m)?.inputBytes ?? NaN) / 2 ** 20)), 1)} | ` +
        `${cell(spread(of(deployment).map((m) => (node(m)?.replicationBytes ?? NaN) / 2 ** 20)), 1)} | ` +
        `${cell(metric('cpuSeconds'), 2)} | ${perTrialRatio ? cell(perTrialRatio, 2, '×') : '1×'} | ${cpuRatio ? cell(cpuRatio, 2, '×') : '1×'} |`)
    })
  }

  const busiest = (m: ShardingMeasurement, field: 'outputBytes' | 'cpuSeconds') => Math.max(...masters(m).map((node) => node[field]))
  const mean = (m: ShardingMeasurement, field: 'outputBytes' | 'cpuSeconds') => sum(masters(m), field) / masters(m).length
  const row = (label: string, digits: number, metric: (m: ShardingMeasurement) => number) =>
    `| ${label} | ${cell(over('one Redis', metric), digits)} | ${cell(over('cluster', metric), digits)} | ${cell(ratio(metric), 2, '×')} |`
  const s = info.scenario
  return [
    info.header,
    '',
    `${s.title}: ${s.about}. Counters read on each node right before and after the measured phase (after ` +
      `${s.warmup.toLocaleString('en-US')} warm-up broadcasts). Cells: median over the trials, min–max below; ratios are ` +
      'taken trial by trial against the one Redis.',
    '',
    '| node | PoVs owned | PUBLISH/SPUBLISH calls | publishes per read | to clients, MiB (pub/sub + replies) | from clients, MiB | to its replica, MiB | Redis CPU s | to clients ÷ one Redis | CPU ÷ one Redis |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...nodeRows,
    '',
    '| three instances on | one Redis | 3-shard cluster | cluster ÷ one Redis |',
    '|---|--:|--:|--:|',
    row('deliveries/s', 0, (m) => m.deliveries.perSecond),
    row('instances\' CPU µs / delivery (all three)', 2, (m) => m.deliveries.cpuMicros),
    row('p99 ms', 1, (m) => m.deliveries.p99),
    row('bytes to clients, busiest master, MiB', 1, (m) => busiest(m, 'outputBytes') / 2 ** 20),
    row('bytes to clients per master (mean), MiB', 1, (m) => mean(m, 'outputBytes') / 2 ** 20),
    row('Redis CPU s of the busiest master', 2, (m) => busiest(m, 'cpuSeconds')),
    row('Redis CPU s per master (mean)', 2, (m) => mean(m, 'cpuSeconds')),
    row('Redis CPU s, all masters', 2, (m) => sum(masters(m), 'cpuSeconds')),
    row('Redis CPU s, replicas', 2, (m) => sum(replicas(m), 'cpuSeconds')),
    row('Redis CPU µs per broadcast, all nodes', 1, (m) => (sum(m.nodes, 'cpuSeconds') * 1e6) / (m.deliveries.expected / (s.clients / s.povs)))
  ].join('\n')
}
