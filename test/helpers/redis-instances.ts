/**
 * Several real plugin instances in this process, each with its own Redis broker on the shared Redis under the test's
 * key prefix: what a deployment of several servers behind a load balancer is, on loopback.
 */
import type { FastifyInstance } from 'fastify'
import type { PovRealtimeOptions } from '../../index.js'
import { createRedisBroker } from '../../lib/redis/index.js'
import type { SharedRedis } from './redis-server.js'
import type { BrokerSettings, RedisTarget } from './redis-targets.js'
import { startServer, type Teardown, type TestServer } from './server.js'

export type { BrokerSettings } from './redis-targets.js'

/**
 * One plugin instance with a Redis broker of its own on `redis` (the shared Redis, or a target of `redis-targets.ts`),
 * under the test's key prefix; closed at teardown.
 * @param afterRegister runs once the plugin is registered (to add the app's own routes)
 */
export async function startRedisInstance (
  t: Teardown, redis: SharedRedis | RedisTarget, options: Partial<PovRealtimeOptions> = {}, broker: BrokerSettings = {},
  afterRegister?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestServer> {
  const created = 'createBroker' in redis
    ? redis.createBroker(broker)
    : createRedisBroker({ ...broker, redis: redis.url, keyPrefix: redis.keyPrefix })
  return await startServer(t, { ...options, broker: created }, undefined, afterRegister)
}

/** `count` plugin instances sharing one Redis under the test's key prefix. */
export async function startRedisInstances (
  t: Teardown, redis: SharedRedis | RedisTarget, count: number, options: Partial<PovRealtimeOptions> = {}, broker: BrokerSettings = {}
): Promise<TestServer[]> {
  const servers: TestServer[] = []
  for (let i = 0; i < count; i++) servers.push(await startRedisInstance(t, redis, options, broker))
  return servers
}
