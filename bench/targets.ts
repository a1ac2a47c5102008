/**
 * The servers compared. Each runs in processes of its own, is driven by the same orchestrator, and is loaded by the
 * same load generator; `wire` says which protocol the clients speak to it.
 */
import { connect } from 'node:net'
import type { Wire } from './load-generator.js'
import type { PlainWsVariant, PluginFeatures, ServerConfig } from './servers/bench-server.js'
import { missingRedisTools, REDIS_TOOLS_HINT } from './redis-servers.js'
import { redisBrokerMissing } from './servers/plugin.js'

export type TargetId =
  | 'plugin' | 'plugin-redis' | 'plugin-redis-cluster' | 'ws' | 'fastify-naive' | 'socket.io' | 'plugin-presence' | 'plugin-reads'
  | 'ws-buffer' | 'ws-buffer-corked' | 'ws-preframed' | 'ws-preframed-corked'

export interface RunContext {
  /** The package root (its `dist/` is what the plugin targets run). */
  readonly root: string
  readonly secret: string
  readonly redisUrl: string
  /** Unique per run, so that Redis keys of concurrent or earlier runs never mix. */
  readonly runId: string
  /** The start-up nodes of the Redis Cluster the run started, when a target needs one (`needsRedisCluster`). */
  readonly redisCluster?: ReadonlyArray<{ host: string, port: number }>
}

export interface Target {
  readonly id: TargetId
  readonly label: string
  readonly wire: Wire
  /** Server processes; clients are spread over them. */
  readonly instances: number
  /** Measures a technique rather than a product: reported with the profile, not in the comparison. */
  readonly experiment?: boolean
  /** The plugin's optional features it runs with: the load generator exercises them (status, typing, `read`). */
  readonly features?: PluginFeatures
  /** Runs on the 3-master Redis Cluster the benchmark starts for the run (`context.redisCluster`). */
  readonly needsRedisCluster?: boolean
  config (context: RunContext, trialKey: string): ServerConfig
  /** Why this target cannot run here, or `undefined`. */
  unavailable? (context: RunContext): Promise<string | undefined>
  /** Removes what a measurement left outside its processes (the Redis keys of its prefix). */
  cleanup? (context: RunContext, trialKey: string): Promise<void>
}

/** The Redis keys of one measurement: its own prefix, never another run's. */
function redisKeyPrefix (runId: string, trialKey: string): string {
  return `pov-bench:${runId}:${trialKey}:`
}

/** Deletes the keys under `prefix` (SCAN, never FLUSH: the Redis may be shared). */
async function deleteRedisKeys (url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    for (let round = 0; round < 10_000; round++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
      if (cursor === '0') break
    }
  } finally {
    redis.disconnect()
  }
}

/** Deletes the keys under `prefix` on every master of the cluster. */
async function deleteClusterKeys (nodes: ReadonlyArray<{ host: string, port: number }>, prefix: string): Promise<void> {
  const { Cluster } = await import('ioredis')
  const cluster = new Cluster([...nodes], { redisOptions: { maxRetriesPerRequest: 1 } })
  try {
    for (const master of cluster.nodes('master')) {
      let cursor = '0'
      for (let round = 0; round < 10_000; round++) {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        // One DEL per key: a cluster refuses a command whose keys lie in different slots.
        if (keys.length > 0) await Promise.all(keys.map((key) => master.del(key)))
        cursor = next
        if (cursor === '0') break
      }
    }
  } finally {
    cluster.disconnect()
  }
}

/** Whether a Redis server answers PING at `url` within a second. */
function redisAnswers (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

const plainWs = (id: TargetId, label: string, variant: PlainWsVariant, experiment = true): Target => ({
  id, label, wire: 'json', instances: 1, experiment, config: () => ({ kind: 'ws', variant })
})

export const TARGETS: readonly Target[] = [
  {
    id: 'plugin',
    label: 'fastify-pov-realtime',
    wire: 'pov',
    instances: 1,
    config: ({ root, secret }) => ({ kind: 'plugin', root, secret })
  },
  {
    id: 'plugin-redis',
    label: 'fastify-pov-realtime, Redis broker, 2 instances',
    wire: 'pov',
    instances: 2,
    config: ({ root, secret, redisUrl, runId }, trialKey) => ({
      kind: 'plugin-redis', root, secret, redisUrl, keyPrefix: redisKeyPrefix(runId, trialKey)
    }),
    cleanup: ({ redisUrl, runId }, trialKey) => deleteRedisKeys(redisUrl, redisKeyPrefix(runId, trialKey)),
    async unavailable ({ root, redisUrl }) {
      return redisBrokerMissing(root) ?? (await redisAnswers(redisUrl) ? undefined : `no Redis answers at ${redisUrl}`)
    }
  },
  {
    // Three instances: with the PoVs spread over three shards, each master's pub/sub traffic should be a third of one
    // Redis's (`npm run bench -- --sharding` measures it against one Redis).
    id: 'plugin-redis-cluster',
    label: 'fastify-pov-realtime, Redis Cluster (3 shards), 3 instances',
    wire: 'pov',
    instances: 3,
    needsRedisCluster: true,
    config: ({ root, secret, redisUrl, runId, redisCluster }, trialKey) => ({
      kind: 'plugin-redis', root, secret, redisUrl, clusterNodes: redisCluster, keyPrefix: redisKeyPrefix(runId, trialKey)
    }),
    cleanup: async ({ redisCluster, runId }, trialKey) => {
      if (redisCluster) await deleteClusterKeys(redisCluster, redisKeyPrefix(runId, trialKey))
    },
    async unavailable ({ root }) {
      const missing = missingRedisTools()
      return redisBrokerMissing(root) ??
        (missing.length > 0 ? `${missing.join(' and ')} missing, needed to start a Redis Cluster (${REDIS_TOOLS_HINT})` : undefined)
    }
  },
  {
    id: 'plugin-presence',
    label: 'fastify-pov-realtime, presence on',
    wire: 'pov',
    instances: 1,
    features: { presence: true },
    config: ({ root, secret }) => ({ kind: 'plugin', root, secret, features: { presence: true } })
  },
  {
    // Every client of the read-receipts scenario marks each activity read, more than the default 20 messages/s.
    id: 'plugin-reads',
    label: 'fastify-pov-realtime, read receipts on (no rate limit)',
    wire: 'pov',
    instances: 1,
    features: { readReceipts: true, unlimited: true },
    config: ({ root, secret }) => ({ kind: 'plugin', root, secret, features: { readReceipts: true, unlimited: true } })
  },
  plainWs('ws', 'plain ws (topic index, one serialization)', 'string', false),
  {
    id: 'fastify-naive',
    label: '@fastify/websocket, naive loop',
    wire: 'json',
    instances: 1,
    config: () => ({ kind: 'fastify-naive' })
  },
  {
    id: 'socket.io',
    label: 'Socket.IO 4, rooms',
    wire: 'socket.io',
    instances: 1,
    config: () => ({ kind: 'socket.io' })
  },
  plainWs('ws-buffer', 'plain ws, shared Buffer', 'buffer'),
  plainWs('ws-buffer-corked', 'plain ws, shared Buffer, corked within a tick', 'buffer-corked'),
  plainWs('ws-preframed', 'plain ws, frame built once', 'preframed'),
  plainWs('ws-preframed-corked', 'plain ws, frame built once, corked within a tick', 'preframed-corked')
]

export function targetById (id: string): Target {
  const target = TARGETS.find((candidate) => candidate.id === id)
  if (!target) throw new Error(`unknown target '${id}'; known: ${TARGETS.map((t) => t.id).join(', ')}`)
  return target
}
