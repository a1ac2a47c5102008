/**
 * A real Redis Cluster for tests: three masters and three replicas on free loopback ports, started by
 * `bench/redis-servers.ts` (the benchmark starts the same cluster) and stopped by pid at teardown; this adds what the
 * tests do to it (find a key's master, kill it, fail over). The shared Redis at 6379 is never touched.
 */
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import {
  infoField, missingRedisTools, REDIS_TOOLS_HINT, startRedisClusterNodes, type ClusterNodeProcess
} from '../../bench/redis-servers.js'
import { sleep, type Teardown } from './server.js'

export type { ClusterNodeProcess }

const inCI = process.env.CI === 'true' || process.env.CI === '1'

/**
 * The `skip` option of a cluster test: skipped (with a loud note) when `redis-server` or `redis-cli` is missing
 * outside CI; under CI the test runs (and fails at once without them: `.ci/run` installs both).
 */
export function skipWithoutRedisCluster (): string | false {
  const missing = missingRedisTools()
  if (missing.length === 0 || inCI) return false
  console.error(`\n*** SKIPPING a Redis Cluster test: ${missing.join(' and ')} missing. Install with ` +
    `\`${REDIS_TOOLS_HINT}\` (CI installs them, and under CI=true this test fails instead). ***\n`)
  return `${missing.join(' and ')} missing (${REDIS_TOOLS_HINT})`
}

export interface RedisClusterServer {
  /** Every node, in start order (the first three became masters at creation). */
  readonly nodes: readonly ClusterNodeProcess[]
  /** `host:port` start-up nodes for an ioredis `Cluster`. */
  readonly startupNodes: ReadonlyArray<{ host: string, port: number }>
  /** A new ioredis Cluster client of these nodes (the caller closes it). */
  client (options?: ClusterOptions): Cluster
  /** The node that is master of the slot of `key` now (asks the cluster). */
  masterOf (key: string): Promise<ClusterNodeProcess>
  /**
   * Resolves once every live node reports `cluster_state:ok` and every live replica is in sync with its master, or
   * rejects after `timeout` ms. (Right after a kill, the nodes still report `ok` until they notice.)
   */
  untilHealthy (timeout?: number): Promise<void>
  /**
   * Kills (SIGKILL) the master of `key`'s slot and resolves once a replica has taken over (another live node owns
   * the slot, every live node reports `cluster_state:ok`); resolves with the killed node and how long it took.
   */
  failOver (key: string, timeout?: number): Promise<{ killed: ClusterNodeProcess, ms: number }>
  /**
   * A planned failover: `CLUSTER FAILOVER` on a replica of `key`'s master (the master stops taking writes until the
   * replica has caught up, then they swap roles); resolves once the replica owns the slot and the cluster is healthy.
   */
  plannedFailover (key: string, timeout?: number): Promise<{ ms: number }>
  /**
   * Resharding: moves `key`'s slot to another master the way `redis-cli --cluster reshard` does (IMPORTING on the
   * target, MIGRATING on the source, MIGRATE of its keys in batches, then SETSLOT NODE on every master); resolves with
   * the new master once the cluster names it as the slot's owner.
   */
  migrateSlot (key: string, timeout?: number): Promise<{ from: ClusterNodeProcess, to: ClusterNodeProcess, keys: number, ms: number }>
}

/** Starts a 3-master, 3-replica cluster; it is stopped at teardown. */
export async function startRedisCluster (t: Teardown): Promise<RedisClusterServer> {
  const { nodes, startupNodes, live, untilHealthy, stop } = await startRedisClusterNodes()
  t.teardown(stop)

  /** The port of the node a live node names as master of `slot`. */
  async function ownerOf (slot: number): Promise<number | undefined> {
    for (const node of live()) {
      const client = new Redis({ port: node.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      client.on('error', () => {})
      try {
        await client.connect()
        const ranges = await client.cluster('SLOTS')
        return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
      } catch {
        continue
      } finally {
        client.disconnect()
      }
    }
    return undefined
  }

  /** The node that is master of `key`'s slot now. */
  async function masterOf (key: string): Promise<ClusterNodeProcess> {
    const probe = new Cluster(live().map((node) => ({ host: '127.0.0.1', port: node.port })))
    probe.on('error', () => {})
    try {
      const slot = await probe.cluster('KEYSLOT', key) as number
      const ranges = await probe.cluster('SLOTS')
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)
      const node = nodes.find((n) => n.port === owner?.[2]?.[1])
      if (!node) throw new Error(`no master found for ${key}`)
      return node
    } finally {
      probe.disconnect()
    }
  }

  return {
    nodes,
    startupNodes,
    client: (options) => new Cluster([...startupNodes], options),
    masterOf,
    untilHealthy,
    async plannedFailover (key, timeout = 30_000) {
      const master = await masterOf(key)
      const probe = new Redis({ port: master.port, host: '127.0.0.1', lazyConnect: true })
      const slot = await probe.call('CLUSTER', 'KEYSLOT', key) as number
      const replicaPort = Number(/^slave0:.*port=(\d+)/m.exec(await probe.info('replication'))?.[1])
      probe.disconnect()
      const replica = new Redis({ port: replicaPort, host: '127.0.0.1', lazyConnect: true })
      const started = Date.now()
      await replica.call('CLUSTER', 'FAILOVER')
      replica.disconnect()
      while (await ownerOf(slot) !== replicaPort) {
        if (Date.now() - started > timeout) throw new Error(`the replica on ${replicaPort} did not take over slot ${slot} within ${timeout} ms`)
        await sleep(50)
      }
      await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
      return { ms: Date.now() - started }
    },
    async migrateSlot (key, timeout = 30_000) {
      const from = await masterOf(key)
      const admin = (port: number) => {
        const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
        client.on('error', () => {})
        return client
      }
      const source = admin(from.port)
      const started = Date.now()
      try {
        const slot = await source.call('CLUSTER', 'KEYSLOT', key) as number
        // Each node is asked its own role and id: a view of the cluster right after a failover may still be stale.
        const masters: Array<{ node: ClusterNodeProcess, id: string }> = []
        for (const node of live()) {
          if (await infoField(node.port, 'replication', 'role') !== 'master') continue
          const client = admin(node.port)
          try {
            masters.push({ node, id: await client.call('CLUSTER', 'MYID') as string })
          } finally {
            client.disconnect()
          }
        }
        const idOf = (port: number) => masters.find(({ node }) => node.port === port)!.id
        const to = masters.find(({ node }) => node !== from)!.node
        const target = admin(to.port)
        try {
          await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', idOf(from.port))
          await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', idOf(to.port))
          let keys = 0
          for (;;) {
            const batch = await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100) as string[]
            if (batch.length === 0) break
            await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...batch)
            keys += batch.length
          }
          // The target first, then the source (as redis-cli does), then every other master.
          await target.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
          await source.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
          for (const { node } of masters) {
            if (node === from || node === to) continue
            const other = admin(node.port)
            try {
              await other.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
            } finally {
              other.disconnect()
            }
          }
          while (await ownerOf(slot) !== to.port) {
            if (Date.now() - started > timeout) throw new Error(`slot ${slot} did not move to ${to.port} within ${timeout} ms`)
            await sleep(50)
          }
          await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
          return { from, to, keys, ms: Date.now() - started }
        } finally {
          target.disconnect()
        }
      } finally {
        source.disconnect()
      }
    },
    async failOver (key, timeout = 30_000) {
      const killed = await masterOf(key)
      const probe = new Redis({ port: killed.port, host: '127.0.0.1', lazyConnect: true })
      const slot = await probe.call('CLUSTER', 'KEYSLOT', key) as number
      probe.disconnect()
      const started = Date.now()
      await killed.kill()
      for (;;) {
        const owner = await ownerOf(slot)
        if (owner !== undefined && owner !== killed.port) break
        if (Date.now() - started > timeout) throw new Error(`no replica took over slot ${slot} within ${timeout} ms`)
        await sleep(100)
      }
      await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
      return { killed, ms: Date.now() - started }
    }
  }
}
