/**
 * A broker's way to a target of `redis-targets.ts` through proxies of the test's own, to break or stall that one
 * broker's network while the others reach Redis directly: one proxy in front of the shared Redis, or on a cluster one
 * in front of each node, with the ioredis `natMap` sending every node the cluster names through its proxy.
 */
import type { RedisBrokerOptions } from '../../lib/redis/index.js'
import type { RedisTarget } from './redis-targets.js'
import type { Teardown } from './server.js'
import { startStallingProxy, type StallingProxy } from './stalling-proxy.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

export interface Proxied<P> {
  /** One proxy per node (one on stand-alone Redis). */
  readonly proxies: readonly P[]
  /** A broker's `redis` option that goes through the proxies, retrying every 100 ms while they are cut. */
  readonly redis: RedisBrokerOptions['redis']
}

const STANDALONE_PORT = 6379

async function proxied<P extends { port: number }> (
  t: Teardown, redis: RedisTarget, start: (t: Teardown, port: number) => Promise<P>
): Promise<Proxied<P>> {
  const retry = () => 100
  if (!redis.cluster) {
    const proxy = await start(t, STANDALONE_PORT)
    return { proxies: [proxy], redis: { host: '127.0.0.1', port: proxy.port, retryStrategy: retry } }
  }
  const nodes = redis.cluster.nodes.filter((node) => node.pid !== undefined)
  const proxies = await Promise.all(nodes.map(async (node) => await start(t, node.port)))
  const natMap = Object.fromEntries(nodes.map((node, i) => [`127.0.0.1:${node.port}`, { host: '127.0.0.1', port: proxies[i]!.port }]))
  return {
    proxies,
    redis: {
      cluster: proxies.map((proxy) => ({ host: '127.0.0.1', port: proxy.port })),
      natMap,
      clusterRetryStrategy: retry
    }
  }
}

/** Cuts and restores every connection to the target at once (`tcp-proxy.ts`). */
export async function throughTcpProxies (t: Teardown, redis: RedisTarget): Promise<Proxied<TcpProxy> & Pick<TcpProxy, 'cut' | 'restore'>> {
  const { proxies, redis: option } = await proxied(t, redis, startTcpProxy)
  return {
    proxies,
    redis: option,
    cut: () => { for (const proxy of proxies) proxy.cut() },
    restore: () => { for (const proxy of proxies) proxy.restore() }
  }
}

/** Holds and releases what the target sends to chosen connections, on every node at once (`stalling-proxy.ts`). */
export async function throughStallingProxies (t: Teardown, redis: RedisTarget): Promise<Proxied<StallingProxy> & Pick<StallingProxy, 'hold' | 'release'>> {
  const { proxies, redis: option } = await proxied(t, redis, startStallingProxy)
  return {
    proxies,
    redis: option,
    hold: (marker) => { for (const proxy of proxies) proxy.hold(marker) },
    release: () => { for (const proxy of proxies) proxy.release() }
  }
}
