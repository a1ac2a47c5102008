/**
 * `fastify-pov-realtime/redis`: the broker for running several instances on one Redis. This file is the folder's
 * public surface; everything else in `lib/redis/` is internal to the broker.
 */
export { createRedisBroker, REDIS_BROKER_DEFAULTS } from './broker.js'
export type { RedisBrokerOptions, RedisClusterStartup, BrokerUnavailable } from './broker.js'
