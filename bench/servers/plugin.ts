/**
 * This plugin, as a user runs it: the built package from `dist/` with its defaults, on Fastify with no logger,
 * publishing with `fastify.broadcastActivity`. With `plugin-redis`, the broker is `createRedisBroker` on a key
 * prefix of this run's own (several of these processes form one deployment), on one Redis or on an ioredis `Cluster`. The feature targets turn on presence
 * or read receipts, and nothing else.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import type { Cluster } from 'ioredis'
import type { Broker } from '../../lib/broker.js'
import type { BenchServer, ServerConfig } from './bench-server.js'

type PluginModule = typeof import('../../index.js')
interface RedisBrokerModule {
  createRedisBroker (options: { redis: string | Cluster, keyPrefix: string }): Broker
}

/** Where the built Redis broker is expected; the Redis target is skipped while it does not exist. */
export function redisBrokerPath (root: string): string {
  return join(root, 'dist', 'lib', 'redis', 'index.js')
}

/** Why the Redis target cannot run from this build, or `undefined` when it can. */
export function redisBrokerMissing (root: string): string | undefined {
  return existsSync(redisBrokerPath(root)) ? undefined : 'dist/lib/redis/index.js is not built (npm run build)'
}

async function importFile<T> (path: string): Promise<T> {
  return await import(pathToFileURL(path).href) as T
}

export async function startPluginServer (config: Extract<ServerConfig, { kind: 'plugin' | 'plugin-redis' }>): Promise<BenchServer> {
  const { default: povRealtime } = await importFile<PluginModule>(join(config.root, 'dist', 'index.js'))
  let broker: Broker | undefined
  // A Cluster client stays the app's (the broker never closes it): closed after the app.
  let cluster: Cluster | undefined
  if (config.kind === 'plugin-redis') {
    const { createRedisBroker } = await importFile<RedisBrokerModule>(redisBrokerPath(config.root))
    // Imported only here: the other targets' processes do not load ioredis.
    if (config.clusterNodes) cluster = new (await import('ioredis')).Cluster([...config.clusterNodes])
    broker = createRedisBroker({ redis: cluster ?? config.redisUrl, keyPrefix: config.keyPrefix })
  }
  const features = config.kind === 'plugin' ? config.features ?? {} : {}
  const app = Fastify({ logger: false })
  await app.register(povRealtime, {
    secret: config.secret,
    broker,
    ...(features.presence ? { presence: true } : {}),
    ...(features.readReceipts ? { readReceipts: true } : {}),
    ...(features.unlimited ? { rateLimit: false } : {}),
    ...(config.kind === 'plugin' && config.heartbeatInterval ? { heartbeatInterval: config.heartbeatInterval } : {})
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: (app.server.address() as { port: number }).port,
    publish: (activity) => app.broadcastActivity(activity),
    close: async () => {
      await app.close()
      cluster?.disconnect()
    }
  }
}
