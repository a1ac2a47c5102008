/**
 * What the Redis broker lends its parts (its ordered channels in `ordered-channel.ts`, presence in `presence.ts`, read
 * marks in `read-marks.ts`, control in `control.ts`): its two connections, its settings, and its fail-fast way of
 * running a command. The parts open no connection of their own.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient, Window } from './scripts.js'

export interface RedisLink {
  readonly keyPrefix: string
  /** Milliseconds a Redis call may take. */
  readonly timeout: number
  /** This instance's name among all instances (unique per process start). */
  readonly instanceId: string
  /** The broker's command connection (once the broker has started). */
  readonly commands: RedisClient
  /**
   * The broker's subscriber connection (once the broker has started); it does not resubscribe by itself. On a Cluster,
   * a Cluster client with one sharded subscriber connection per master (ioredis `shardedSubscribers`).
   */
  readonly subscriber: RedisClient
  /**
   * `true` on a Redis Cluster: channels are sharded (SSUBSCRIBE, SPUBLISH, messages as `smessage`), each on the shard
   * that owns its hash slot; `false` on a stand-alone Redis (SUBSCRIBE, PUBLISH, `message`).
   */
  readonly sharded: boolean
  readonly log: FastifyBaseLogger
  /** The history window the broker keeps. */
  readonly window: Window
  /** `false` when the plugin's `history` option is off (the window then only buffers gaps). */
  readonly history: boolean
  /**
   * Runs one command on the command connection. Rejects with `POV_REALTIME_BROKER_UNAVAILABLE` at once while Redis is
   * not connected or the broker is closed, and after `timeout` ms.
   */
  command<T> (send: (commands: RedisClient) => Promise<T>): Promise<T>
  /** Subscribes the subscriber connection to `channels`; resolves once Redis confirmed, rejects after `timeout` ms. */
  subscribe (channels: readonly string[]): Promise<void>
  /**
   * Unsubscribes from `channel` (nothing to undo while the connection is down: it resubscribes nothing by itself);
   * never rejects.
   */
  unsubscribe (channel: string): Promise<void>
}
