/**
 * Several real plugin instances in this process, each with its own Redis broker on the shared Redis under the test's
 * key prefix: what a deployment of several servers behind a load balancer is, on loopback.
 */
import type { FastifyInstance } from 'fastify'
import type { PovRealtimeOptions } from '../../index.js'
import { createRedisBroker, type RedisBrokerOptions } from '../../lib/redis/index.js'
import type { SharedRedis } from './redis-server.js'
import { startServer, type Teardown, type TestServer } from './server.js'

/** What a test may set on the brokers it starts (the Redis and the key prefix are the test's). */
export type BrokerSettings = Omit<RedisBrokerOptions, 'redis' | 'keyPrefix'>

/**
 * One plugin instance with a Redis broker of its own on `redis`, under the test's key prefix; closed at teardown.
 * @param afterRegister runs once the plugin is registered (to add the app's own routes)
 */
export async function startRedisInstance (
  t: Teardown, redis: SharedRedis, options: Partial<PovRealtimeOptions> = {}, broker: BrokerSettings = {},
  afterRegister?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestServer> {
  return await startServer(t, { ...options, broker: createRedisBroker({ ...broker, redis: redis.url, keyPrefix: redis.keyPrefix }) },
    undefined, afterRegister)
}

/** `count` plugin instances sharing one Redis under the test's key prefix. */
export async function startRedisInstances (
  t: Teardown, redis: SharedRedis, count: number, options: Partial<PovRealtimeOptions> = {}, broker: BrokerSettings = {}
): Promise<TestServer[]> {
  const servers: TestServer[] = []
  for (let i = 0; i < count; i++) servers.push(await startRedisInstance(t, redis, options, broker))
  return servers
}
