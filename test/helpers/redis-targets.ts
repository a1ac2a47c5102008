/**
 * The Redis deployments the core Redis suites run against, so that one suite covers both (not two copies):
 * `standalone`, the shared Redis at 6379 under a key prefix of the test's own, and `cluster`, a real 3-master,
 * 3-replica Redis Cluster (`redis-cluster.ts`) started once per test file, on first use, and stopped at its end.
 * Each target makes brokers for `redis-instances.ts`: a cluster broker gets an ioredis `Cluster` client of its own,
 * closed after the broker.
 */
import type { Cluster, Redis } from 'ioredis'
import tap from 'tap'
import type { Broker } from '../../lib/broker.js'
import { createRedisBroker, type RedisBrokerOptions } from '../../lib/redis/index.js'
import { skipWithoutRedisCluster, startRedisCluster, type RedisClusterServer } from './redis-cluster.js'
import { sharedRedis, uniqueKeyPrefix } from './redis-server.js'
import type { Teardown } from './server.js'

export type RedisTargetName = 'standalone' | 'cluster'

/** Every target, in the order the suites run them. */
export const REDIS_TARGETS: readonly RedisTargetName[] = ['standalone', 'cluster']

/** What a test may set on the brokers it starts (the Redis and the key prefix are the target's). */
export type BrokerSettings = Omit<RedisBrokerOptions, 'redis' | 'keyPrefix'>

export interface RedisTarget {
  readonly name: RedisTargetName
  /** The test's own key prefix. */
  readonly keyPrefix: string
  /** A client for looking into Redis (closed at teardown). */
  readonly client: Redis | Cluster
  /** On `cluster`, the cluster's nodes (to kill one). */
  readonly cluster?: RedisClusterServer
  /**
   * What a broker in a child process (`test/redis/fixtures`) needs to reach this target under the test's key prefix:
   * KEY_PREFIX, and REDIS_URL or REDIS_CLUSTER_NODES (start-up nodes, JSON).
   */
  readonly processEnv: Record<string, string>
  /** A new broker on this target under the test's key prefix. */
  createBroker (settings?: BrokerSettings): Broker
}

let cluster: Promise<RedisClusterServer> | undefined

/** The file's cluster, started on first use; stopped when the file's tests are done. */
async function fileCluster (): Promise<RedisClusterServer> {
  cluster ??= startRedisCluster(tap)
  return await cluster
}

/** `name`'s Redis for one test, with a fresh key prefix. */
export async function openRedisTarget (t: Teardown, name: RedisTargetName): Promise<RedisTarget> {
  if (name === 'standalone') {
    const shared = await sharedRedis(t)
    return {
      name,
      keyPrefix: shared.keyPrefix,
      client: shared.client,
      processEnv: { REDIS_URL: shared.url, KEY_PREFIX: shared.keyPrefix },
      createBroker: (settings = {}) => createRedisBroker({ ...settings, redis: shared.url, keyPrefix: shared.keyPrefix })
    }
  }
  const server = await fileCluster()
  const keyPrefix = uniqueKeyPrefix()
  const client = server.client()
  t.teardown(() => client.disconnect())
  return {
    name,
    keyPrefix,
    client,
    cluster: server,
    processEnv: { REDIS_CLUSTER_NODES: JSON.stringify(server.startupNodes), KEY_PREFIX: keyPrefix },
    createBroker: (settings = {}) => {
      // The broker never closes a Cluster it was given (it is the app's): this one is closed after the broker.
      const own = server.client()
      const broker = createRedisBroker({ ...settings, redis: own, keyPrefix })
      const close = broker.close.bind(broker)
      broker.close = async () => {
        try {
          await close()
        } finally {
          own.disconnect()
        }
      }
      return broker
    }
  }
}

/** A subtest's `t`. */
export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0]

/** Defines the test `name` once per target (`name [standalone]`, `name [cluster]`), each with its target's Redis. */
export function testOnEachTarget (name: string, body: (t: TapTest, redis: RedisTarget) => Promise<void>): void {
  for (const target of REDIS_TARGETS) {
    const skip = target === 'cluster' && skipWithoutRedisCluster()
    tap.test(`${name} [${target}]`, { skip }, async (t) => { await body(t, await openRedisTarget(t, target)) })
  }
}

/** The masters of a cluster target's client, or the stand-alone client itself. */
function servers (redis: RedisTarget): Redis[] {
  return 'nodes' in redis.client ? redis.client.nodes('master') : [redis.client]
}

/** The channels matching `pattern` that some instance is subscribed to (sharded channels on a cluster), sorted. */
export async function subscribedChannels (redis: RedisTarget, pattern: string): Promise<string[]> {
  const kind = redis.name === 'cluster' ? 'SHARDCHANNELS' : 'CHANNELS'
  const lists = await Promise.all(servers(redis).map(async (node) => await node.call('PUBSUB', kind, pattern) as string[]))
  return [...new Set(lists.flat())].sort()
}

/** How many connections are subscribed to `channel` (on a cluster: on the shard that owns it). */
export async function subscriberCount (redis: RedisTarget, channel: string): Promise<number> {
  const kind = redis.name === 'cluster' ? 'SHARDNUMSUB' : 'NUMSUB'
  const counts = await Promise.all(servers(redis).map(async (node) => Number((await node.call('PUBSUB', kind, channel) as [string, number])[1])))
  return counts.reduce((sum, n) => sum + n, 0)
}

/**
 * Listens on `channel` as an outside connection would, with the target's kind of pub/sub (sharded on a cluster);
 * resolves once subscribed. Closed at teardown.
 */
export async function listen (t: Teardown, redis: RedisTarget, channel: string, onMessage: (message: string) => void): Promise<void> {
  if (redis.cluster) {
    const listener = redis.cluster.client({ shardedSubscribers: true })
    t.teardown(() => listener.disconnect())
    listener.on('smessage', (_channel: string, message: string) => onMessage(message))
    await listener.ssubscribe(channel)
    return
  }
  const listener = (redis.client as Redis).duplicate()
  t.teardown(() => listener.disconnect())
  listener.on('message', (_channel: string, message: string) => onMessage(message))
  await listener.subscribe(channel)
}

/** The channel every instance's broker listens to for control messages (hash-tagged on a cluster, see `control.ts`). */
export function controlChannel (redis: RedisTarget): string {
  return redis.cluster ? `${redis.keyPrefix}control{c}` : `${redis.keyPrefix}control`
}
