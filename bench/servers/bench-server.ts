/**
 * What every benchmark target implements: a server on a loopback port that publishes an activity to the clients
 * subscribed to its PoV. The server process (`server-process.ts`) drives it; the targets differ only in here.
 */
import type { BenchActivity } from '../activity.js'

export interface BenchServer {
  /** The loopback port it listens on. */
  readonly port: number
  /**
   * Publishes one activity to the subscribers of `activity.povId`. A returned promise settles once the activity
   * has been handed to this process's sockets (the plugin's `broadcastActivity`).
   */
  publish (activity: BenchActivity): void | Promise<unknown>
  close (): Promise<void>
}

/**
 * The plugin's optional features a target turns on (the `presence` and `readReceipts` options), and `rateLimit: false`
 * for a workload whose clients legitimately send more than the default limit.
 */
export interface PluginFeatures {
  presence?: boolean
  readReceipts?: boolean
  unlimited?: boolean
}

/** Which server a target process runs, and how. Passed to the process as JSON. */
export type ServerConfig =
  | { kind: 'plugin', root: string, secret: string, features?: PluginFeatures, heartbeatInterval?: number }
  | {
    kind: 'plugin-redis'
    root: string
    secret: string
    redisUrl: string
    keyPrefix: string
    /** Start-up nodes of a Redis Cluster: the broker runs on an ioredis `Cluster` of them instead of `redisUrl`. */
    clusterNodes?: ReadonlyArray<{ host: string, port: number }>
  }
  | { kind: 'ws', variant: PlainWsVariant }
  | { kind: 'fastify-naive' }
  | { kind: 'socket.io' }

/**
 * How plain `ws` writes a broadcast:
 * - `string`: one `JSON.stringify` per broadcast, `ws.send(string)` per subscriber (what an app would write);
 * - `buffer`: the same, sent as one shared `Buffer` (what the plugin does);
 * - `preframed`: the WebSocket frame built once per broadcast and the same bytes written to every subscriber's
 *   TCP socket (server frames are not masked);
 * - `…-corked`: a socket that is written to a second time in one tick is corked until the end of the tick, so the
 *   frames after the first leave in one write.
 * Only `string` is a target of the comparison; the others measure what each technique is worth.
 */
export type PlainWsVariant = 'string' | 'buffer' | 'buffer-corked' | 'preframed' | 'preframed-corked'
