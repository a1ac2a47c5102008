/**
 * The Redis broker (entry: `index.ts`): for running several instances, on Redis streams, pub/sub and scripts.
 *
 * Publishing runs one script that appends the activity to its PoV's stream (the history every instance replays
 * from) and publishes it on the PoV's channel, atomically, so every instance sees a PoV's entries in one order, the
 * stream's, whoever published them. An instance subscribes only to the channels of the PoVs its sockets watch, on a
 * connection of its own; each watched PoV has a `PovFeed`, followed by the ordered-channel engine
 * (`ordered-channel.ts`), that delivers every entry once, in order, and fills any gap (a cut connection) from the
 * stream. See `scripts.ts` for what lives in Redis and `cursor.ts` for cursors.
 *
 * On a Redis Cluster (an ioredis `Cluster`, or start-up nodes, as `redis`) every key and channel of one PoV shares a
 * hash tag, so one shard holds them and each script stays in one slot; the PoV channels are sharded (SPUBLISH from the
 * scripts, SSUBSCRIBE on a subscriber Cluster client that keeps one connection per master), so a PoV's traffic stays
 * on its shard instead of reaching every node.
 *
 * This is the only file that imports ioredis at run time: apps without Redis never load it.
 */
import { once } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { Cluster, Redis, ReplyError, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis'
import { encodeActivityFrame } from '../activity-frame.js'
import type { Broker, BrokerEntry, BrokerSink, BrokerStartContext, ControlMessage, Replay } from '../broker.js'
import { CLUSTER_SUBSCRIBER_SLOTS_REFRESH_MS } from '../constants.js'
import { BrokerUnavailableError, InvalidOptionError } from '../errors.js'
import { compareStreamIds, formatCursor, newEpoch, parseCursor, type StreamPosition } from './cursor.js'
import { RedisControlRelay } from './control.js'
import { DeadlineSweep } from './deadline-sweep.js'
import type { RedisLink } from './link.js'
import { OrderedChannels } from './ordered-channel.js'
import { PovFeed } from './pov-feed.js'
import { DEFAULT_PRESENCE_TTL, RedisPresenceRelay, newInstanceId } from './presence.js'
import { PublishBatcher, UNWRITABLE_MESSAGE, type PublishFailure } from './publish-batch.js'
import { RedisReadMarkStore } from './read-marks.js'
import {
  parseChannelEntry, povKeys, readAfter, type ChannelEntry, type PovKeys, type RedisClient, type Window
} from './scripts.js'

/**
 * A Redis Cluster's start-up nodes (`cluster`, what `new Cluster(nodes)` takes: `{ host, port }`, `'host:port'` or a
 * port), with ioredis `Cluster` options beside them, for a `Cluster` client that the broker opens and closes.
 */
export type RedisClusterStartup = ClusterOptions & { cluster: ClusterNode[] }

export interface RedisBrokerOptions {
  /**
   * An ioredis client, which stays the app's (the broker uses it for commands and never closes it), or a URL or
   * ioredis options for a client that the broker opens and closes. The broker also opens one subscriber connection.
   * An ioredis `Cluster` (Redis 7 or later) runs the broker on a Redis Cluster: it stays the app's too, and the
   * broker opens a subscriber Cluster client of the same nodes with one sharded subscriber connection per master.
   * `{ cluster: [{ host, port }, …], ...clusterOptions }`: a Cluster of those start-up nodes that the broker opens
   * and closes.
   */
  redis: Redis | Cluster | string | RedisOptions | RedisClusterStartup
  /** Prefix of every key and channel, so that several apps can share one Redis. Default `'pov-realtime:'`. */
  keyPrefix?: string
  /**
   * Milliseconds a Redis call may take before the broker gives up (`broadcastActivity` then rejects, with
   * `outcomeUnknown: true`: the activity may still have been published). Default 2000.
   */
  timeout?: number
  /**
   * With the plugin's `presence` option: milliseconds after its last heartbeat that an instance counts as dead (its
   * members then leave on every other instance within `presenceTtl * 4 / 3`). Each instance records a heartbeat every
   * `presenceTtl / 3` ms. Give every instance the same value. Default 15000.
   */
  presenceTtl?: number
}

export const REDIS_BROKER_DEFAULTS = { keyPrefix: 'pov-realtime:', timeout: 2000, presenceTtl: DEFAULT_PRESENCE_TTL } as const

/** How long a PoV's epoch and newest id outlive its last activity (at least the history's ttl): a quiet PoV's cursors stay valid that long. */
export const CURSOR_LIFETIME_MS = 24 * 60 * 60_000

/** With `history: false` the stream still buffers entries, only to fill an instance's gaps after a reconnect. */
const GAP_BUFFER = { size: 100, ttl: 60_000 } as const

/** Publishes waiting for Redis at once; more reject at once, so that a slow or hung Redis cannot grow memory without bound. */
export const MAX_PENDING_PUBLISHES = 10_000

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

/** Options of the connections the broker opens: fail fast instead of queueing while Redis is away. */
const FAIL_FAST: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false }

/**
 * `broadcastActivity`'s rejection with the Redis broker: `POV_REALTIME_BROKER_UNAVAILABLE`, plus `outcomeUnknown`.
 * `false`: the activity surely was not published (Redis was not connected, or too many publishes were waiting).
 * `true`: the publish was written to Redis but its answer did not come (it did not come within `timeout`, or the
 * connection was lost meanwhile): the activity may have been published and delivered everywhere. A retry must reuse
 * the activity's `id`, and clients may then see it twice unless they deduplicate by `id`.
 */
export type BrokerUnavailable = InstanceType<typeof BrokerUnavailableError> & { readonly outcomeUnknown: boolean }

function brokerUnavailable (message: string, outcomeUnknown: boolean, cause?: unknown): BrokerUnavailable {
  const error = cause === undefined ? new BrokerUnavailableError(message) : new BrokerUnavailableError(message, { cause })
  return Object.assign(error, { outcomeUnknown })
}

/** A command the broker did not even send, because the connection was not ready or the broker is closed. */
class NotSentError extends Error {}

/**
 * A command ioredis refused to write (the socket closed an instant ago, before the status said so; see
 * `UNWRITABLE_MESSAGE`) was not sent. Any other failure of a sent command may have come after Redis ran it.
 */
function markNotSent (err: unknown): never {
  throw err instanceof Error && err.message === UNWRITABLE_MESSAGE ? new NotSentError(err.message, { cause: err }) : err
}

/**
 * The broker for several instances: `register(povRealtime, { secret, broker: createRedisBroker({ redis }) })`.
 * Requires Redis 6.2 or later (a Redis Cluster: 7.0 or later, for sharded pub/sub).
 * @param options.redis an ioredis client or Cluster (the app keeps it), or a URL, ioredis options or `{ cluster: startupNodes, ...clusterOptions }` (the broker opens and closes it)
 * @param [options.keyPrefix='pov-realtime:'] prefix of every key and channel
 * @param [options.timeout=2000] milliseconds a Redis call may take before the broker gives up on it
 * @param [options.presenceTtl=15000] milliseconds after its last heartbeat that an instance's members leave (presence)
 */
export function createRedisBroker (options: RedisBrokerOptions): Broker {
  return new RedisBroker(options)
}

function fail (message: string): never {
  throw new InvalidOptionError(`createRedisBroker: ${message}`)
}

function isClusterStartup (value: RedisBrokerOptions['redis']): value is RedisClusterStartup {
  return typeof value === 'object' && value !== null && !isClient(value) && 'cluster' in value
}

/** A start-up node as ioredis takes it: a port, `'host:port'` (or a redis:// URL), or `{ host?, port? }`. */
function isStartupNode (node: unknown): boolean {
  const isPort = (port: unknown) => Number.isSafeInteger(port) && (port as number) > 0 && (port as number) < 65536
  if (typeof node === 'number') return isPort(node)
  if (typeof node === 'string') return node.length > 0
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return false
  const { host, port } = node as { host?: unknown, port?: unknown }
  return (host === undefined || (typeof host === 'string' && host.length > 0)) && (port === undefined || isPort(port))
}

function checkStartupNodes ({ cluster }: RedisClusterStartup): void {
  if (!Array.isArray(cluster) || cluster.length === 0 || !cluster.every(isStartupNode)) {
    fail(`redis.cluster must be a non-empty array of start-up nodes ({ host, port }, 'host:port' or a port), got ${JSON.stringify(cluster)}`)
  }
}

function isClient (value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null && typeof (value as Redis).duplicate === 'function'
}

/** A Redis call that got no answer within the broker's `timeout`. */
class NoAnswerError extends Error {}

/**
 * Settles like `promise`, or rejects after `ms` (the promise's own late rejection is then ignored).
 * A busy event loop runs an overdue timer before it reads the sockets, so an answer that arrived in time would lose
 * to the timer; the rejection therefore waits for `setImmediate`, which runs after the loop has read them.
 */
function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let afterIo: NodeJS.Immediate | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      afterIo = setImmediate(() => reject(new NoAnswerError(`Redis did not answer within ${ms} ms`)))
    }, ms)
  })
  promise.catch(() => {})
  return Promise.race([promise, expired]).finally(() => {
    clearTimeout(timer)
    clearImmediate(afterIo)
  })
}

/** Resolves once `connection` is ready, has failed to connect, or after `ms`. */
async function readyWithin (connection: RedisClient, ms: number): Promise<void> {
  if (connection.status === 'ready') return
  await withTimeout(once(connection, 'ready'), ms).catch(() => {})
}

/** Closes a connection the broker opened, at once (in-flight commands reject). */
async function disconnect (connection: RedisClient): Promise<void> {
  if (connection.status === 'end') return
  const ended = once(connection, 'end')
  connection.disconnect()
  await withTimeout(ended, 1000).catch(() => {})
}

class RedisBroker implements Broker {
  readonly #redis: RedisBrokerOptions['redis']
  readonly #keyPrefix: string
  readonly #timeout: number
  #commands!: RedisClient
  #subscriber!: RedisClient
  /** On a Redis Cluster: sharded pub/sub (see `link.ts`). */
  readonly #sharded: boolean
  #sink!: BrokerSink
  #log!: FastifyBaseLogger
  #window!: Window
  #replays = false
  /** Watched PoVs. */
  readonly #feeds = new Map<string, PovFeed>()
  /** The watched PoVs' channels, each followed in order by its feed. */
  readonly #channels: OrderedChannels<ChannelEntry, PovFeed>
  #pendingPublishes = 0
  readonly #publishAnswered = () => { this.#pendingPublishes-- }
  #publishes!: PublishBatcher
  /** The feeds' waits for a position (a publish's own entry, a resume cursor), under one timer. */
  readonly #feedWaits: DeadlineSweep
  /** Connections whose loss has been logged (logged once per outage, not at every reconnect attempt). */
  readonly #down = new Set<RedisClient>()
  /** Set from a command that Redis did not answer in time until one it answers (a hung or paused Redis). */
  #unresponsive = false
  #onFault: (() => void) | undefined
  #closed = false
  readonly #onCommandsReady = () => this.#channels.retryNow()
  readonly presence: RedisPresenceRelay
  readonly readMarks: RedisReadMarkStore
  readonly #control: RedisControlRelay

  constructor ({
    redis,
    keyPrefix = REDIS_BROKER_DEFAULTS.keyPrefix,
    timeout = REDIS_BROKER_DEFAULTS.timeout,
    presenceTtl = REDIS_BROKER_DEFAULTS.presenceTtl
  }: RedisBrokerOptions) {
    if (!(typeof redis === 'string' && redis.length > 0) && !(typeof redis === 'object' && redis !== null)) {
      fail('redis must be an ioredis client or Cluster, a redis:// URL, ioredis options or { cluster: startupNodes }')
    }
    if (typeof keyPrefix !== 'string' || /[{}]/.test(keyPrefix)) {
      fail('keyPrefix must be a string without { or } (they would break the per-PoV hash tags)')
    }
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout <= 0) {
      fail(`timeout must be a positive integer (ms), got ${JSON.stringify(timeout)}`)
    }
    if (typeof presenceTtl !== 'number' || !Number.isSafeInteger(presenceTtl) || presenceTtl < 100) {
      fail(`presenceTtl must be an integer of at least 100 (ms), got ${JSON.stringify(presenceTtl)}`)
    }
    const startup = isClusterStartup(redis)
    if (startup) checkStartupNodes(redis)
    const clusterOptions = redis instanceof Cluster ? redis.options : startup ? redis : undefined
    if (clusterOptions && (clusterOptions.keyPrefix ?? clusterOptions.redisOptions?.keyPrefix)) {
      // ioredis prefixes sharded channels (they count as keys) but not the ones the scripts publish on: they would differ.
      fail('an ioredis Cluster with a keyPrefix of its own is not supported; use the broker\'s keyPrefix option instead')
    }
    if (redis instanceof Cluster && !('shardedSubscribers' in redis.options)) {
      // An older ioredis would send SSUBSCRIBE on its one subscriber connection, to a node that may not own the slot.
      fail('this ioredis Cluster has no shardedSubscribers option (sharded pub/sub); upgrade ioredis (see docs/redis.md#redis-cluster)')
    }
    this.#redis = redis
    this.#sharded = redis instanceof Cluster || startup
    this.#keyPrefix = keyPrefix
    this.#timeout = timeout
    this.#feedWaits = new DeadlineSweep(timeout)
    const link = this.#lend()
    this.#channels = new OrderedChannels(link, {
      parse: parseChannelEntry,
      sync: async (feed, isOpen) => await this.#sync(feed, isOpen),
      what: 'a PoV'
    })
    this.presence = new RedisPresenceRelay(link, presenceTtl)
    this.readMarks = new RedisReadMarkStore(link)
    this.#control = new RedisControlRelay(link)
  }

  async start ({ sink, history, log, faulted }: BrokerStartContext): Promise<void> {
    this.#sink = sink
    this.#log = log
    this.#onFault = faulted
    this.#replays = history !== false
    const { size, ttl } = history || GAP_BUFFER
    this.#window = { size, ttl, metaTtl: Math.max(ttl, CURSOR_LIFETIME_MS) }

    if (isClient(this.#redis)) {
      this.#commands = this.#redis
      if (this.#commands.status === 'wait') this.#commands.connect().catch(() => {}) // a lazyConnect client
    } else if (isClusterStartup(this.#redis)) {
      // Like an app's Cluster (ioredis's own retries across a failover), but the broker's to close.
      const { cluster: startupNodes, ...clusterOptions } = this.#redis
      // Its sharded subscribers are the subscriber Cluster's below, not the command Cluster's.
      this.#commands = new Cluster(startupNodes, { ...clusterOptions, lazyConnect: false, shardedSubscribers: false })
      this.#watchHealth(this.#commands, 'command')
    } else {
      this.#commands = typeof this.#redis === 'string'
        ? new Redis(this.#redis, FAIL_FAST)
        : new Redis({ ...this.#redis, ...FAIL_FAST })
      this.#watchHealth(this.#commands, 'command')
    }
    this.#commands.on('ready', this.#onCommandsReady)
    this.#subscriber = this.#commands instanceof Cluster
      ? this.#commands.duplicate([], {
        lazyConnect: false,
        enableOfflineQueue: false,
        // One connection per master, each SSUBSCRIBEd to the channels of its slots (ioredis moves them on failover;
        // the channel sets subscribe again and fill the gaps on its `subscribersReady`, see `channel-set.ts`).
        shardedSubscribers: true,
        slotsRefreshInterval: CLUSTER_SUBSCRIBER_SLOTS_REFRESH_MS,
        redisOptions: { ...this.#commands.options.redisOptions, ...FAIL_FAST, connectionName: 'pov-realtime:subscriber' }
      })
      : this.#commands.duplicate({
        ...FAIL_FAST,
        lazyConnect: false,
        // Subscriptions are restored by the channel sets (`channel-set.ts`), which also fill what was missed meanwhile.
        autoResubscribe: false,
        connectionName: 'pov-realtime:subscriber'
      })
    this.#watchHealth(this.#subscriber, 'subscriber')
    const broker = this // the batcher reads the window as it is when a batch is sent
    this.#publishes = new PublishBatcher({
      connection: () => this.#closed
        ? 'the broker is closed'
        : this.#commands.status === 'ready' ? this.#commands : `Redis is not connected (${this.#commands.status})`,
      get window () { return broker.#window },
      pipelinePerPov: this.#sharded
    }, this.#timeout)
    this.#channels.start()

    // Start without Redis rather than not at all: publishing fails fast until it is there, delivery begins when it is.
    await Promise.all([readyWithin(this.#commands, this.#timeout), readyWithin(this.#subscriber, this.#timeout)])
    if (this.#commands.status !== 'ready' || this.#subscriber.status !== 'ready') {
      this.#log.warn('pov-realtime: Redis is not reachable yet; activities cannot be published until it is')
    }
    // Listening before any socket connects, so that a revocation sent from now on counts this instance.
    await this.#control.start((message) => this.#sink.control?.(message))
  }

  /** A revocation, to every instance connected to Redis (see `control.ts` for what that means exactly). */
  async control (message: ControlMessage): Promise<void> {
    await this.#control.send(message)
  }

  async publish (povId: string, activityJson: string): Promise<{ cursor: string, delivered: number }> {
    if (this.#pendingPublishes >= MAX_PENDING_PUBLISHES) {
      throw brokerUnavailable(`${MAX_PENDING_PUBLISHES} publishes are already waiting for Redis`, false)
    }
    // Resolve once this instance's own subscribers have it: it comes back through the PoV's channel, in order.
    const feed = this.#feeds.get(povId)
    const keys = feed?.keys ?? this.#keys(povId)
    feed?.publishStarted()
    this.#pendingPublishes++
    let published: StreamPosition
    try {
      published = await this.#publishes.publish(keys, activityJson, newEpoch(), this.#publishAnswered)
      this.#answered()
    } catch (err) {
      feed?.publishFailed()
      const { error, sent, replied, timedOut } = err as PublishFailure
      if (timedOut) this.#notAnswered()
      // Unless Redis answered with an error, a publish that was sent may have run: say so rather than "not published".
      const outcomeUnknown = sent && !replied
      const message = error.message
      throw brokerUnavailable(outcomeUnknown ? `${message}; the activity may have been published` : message, outcomeUnknown, error)
    }
    const cursor = formatCursor(published.epoch, published.id)
    return { cursor, delivered: feed ? await feed.publishDelivered(published, cursor) : 0 }
  }

  async watch (povId: string): Promise<void> {
    const parts = Promise.all([this.presence.watch(povId), this.readMarks.watch(povId)])
    let feed = this.#feeds.get(povId)
    if (feed) {
      feed.refs++
    } else {
      feed = new PovFeed(povId, this.#keys(povId), (cursor, json) => this.#deliver(povId, cursor, json), this.#feedWaits)
      this.#feeds.set(povId, feed)
      this.#channels.open(feed.channel, feed)
    }
    // While Redis is unreachable, delivery begins when it is back (the ordered channels retry until it is).
    if (this.#subscriber.status !== 'ready' || this.#commands.status !== 'ready') return
    const [started] = await Promise.all([feed.untilStarted(this.#timeout), parts])
    if (!started) {
      this.#log.warn({ povId }, 'pov-realtime: Redis did not confirm a subscription in time; delivery begins when it does')
    }
  }

  async unwatch (povId: string): Promise<void> {
    this.presence.unwatch(povId)
    this.readMarks.unwatch(povId)
    const feed = this.#feeds.get(povId)
    if (!feed || --feed.refs > 0) return
    this.#feeds.delete(povId)
    feed.close()
    await this.#channels.close(feed.channel)
  }

  async replay (povId: string, since: string): Promise<Replay> {
    const position = parseCursor(since)
    if (!this.#replays || !position) return NOT_RECOVERED
    const result = await this.#command(() => readAfter(this.#commands, this.#keys(povId), this.#window, position, false))
    if (!result.intact) return NOT_RECOVERED
    const feed = this.#feeds.get(povId)
    // This instance's live delivery may lag behind a cursor issued by another one: wait until it has passed the
    // cursor, so that nothing at or before it reaches this subscriber again after the replay.
    if (feed && await feed.reach(position) === undefined) {
      this.#log.warn({ povId }, 'pov-realtime: live delivery did not catch up with a resume cursor in time; answering recovered: false')
      return NOT_RECOVERED
    }
    // Entries the feed has not delivered yet are left to it: the subscriber gets them live, once.
    const entries: BrokerEntry[] = []
    for (const { id, json } of result.entries) {
      if (feed && !feed.hasReached({ epoch: result.epoch, id })) break
      const cursor = formatCursor(result.epoch, id)
      entries.push({ cursor, frame: encodeActivityFrame(cursor, json) })
    }
    return { recovered: true, entries, held: (cursor) => isAtOrBefore(cursor, position) }
  }

  async close (): Promise<void> {
    // First, while the connections are up: this instance's members leave.
    await this.presence.close()
    this.readMarks.close()
    this.#control.close()
    this.#closed = true
    this.#publishes?.stop()
    this.#channels.stop()
    for (const feed of this.#feeds.values()) feed.close()
    this.#feeds.clear()
    this.#feedWaits.stop()
    if (!this.#commands) return // never started
    this.#commands.off('ready', this.#onCommandsReady)
    await disconnect(this.#subscriber)
    if (this.#commands !== this.#redis) await disconnect(this.#commands)
  }

  /** What the optional parts (presence, read marks) use of this broker. */
  #lend (): RedisLink {
    const instanceId = newInstanceId()
    const broker = this // the getters below read this broker's state as it is when they are called
    return {
      keyPrefix: this.#keyPrefix,
      timeout: this.#timeout,
      instanceId,
      sharded: this.#sharded,
      get commands () { return broker.#commands },
      get subscriber () { return broker.#subscriber },
      get log () { return broker.#log },
      get window () { return broker.#window },
      get history () { return broker.#replays },
      command: async (send) => {
        try {
          return await this.#command(() => send(this.#commands))
        } catch (err) {
          throw brokerUnavailable((err as Error).message, !(err instanceof NotSentError) && !(err instanceof ReplyError), err)
        }
      },
      subscribe: async (channels) => {
        // Sharded: one SSUBSCRIBE per channel, since one command may only name channels of one slot.
        const subscribed = this.#sharded
          ? Promise.all(channels.map(async (channel) => await this.#subscriber.ssubscribe(channel)))
          : this.#subscriber.subscribe(...channels)
        await withTimeout(subscribed, this.#timeout)
      },
      unsubscribe: async (channel) => {
        await (this.#sharded ? this.#subscriber.sunsubscribe(channel) : this.#subscriber.unsubscribe(channel)).catch(() => {})
      }
    }
  }

  // ---- delivery ------------------------------------------------------------------------------

  #keys (povId: string): PovKeys {
    return povKeys(this.#keyPrefix, povId, this.#sharded)
  }

  #deliver (povId: string, cursor: string, json: string | Buffer): number {
    return this.#sink.deliver(povId, { cursor, frame: encodeActivityFrame(cursor, json) })
  }

  /**
   * Brings one feed to where the stream stands (its channel is subscribed: nothing published after the read can be
   * missed): its start read, or the entries it missed read from the stream.
   */
  async #sync (feed: PovFeed, isOpen: () => boolean): Promise<void> {
    const { keys } = feed
    if (!feed.synced) {
      const [epoch, last] = await this.#command(() => this.#commands.hmget(keys.meta, 'epoch', 'last'))
      if (isOpen()) feed.start({ epoch: epoch ?? '', id: last ?? '' })
      return
    }
    const result = await this.#command(() => readAfter(this.#commands, keys, this.#window, feed.position!, true))
    if (!isOpen()) return
    // What the history still holds is delivered first; an unfillable gap is then told with where delivery goes on.
    feed.fill(result)
    if (!result.intact) {
      this.#log.warn({ povId: feed.povId }, 'pov-realtime: activities were lost before they could be delivered (Redis lost them, or this instance was cut off longer than the history keeps them)')
      const { epoch, id } = feed.position!
      this.#sink.interrupted(feed.povId, id === '' ? null : formatCursor(epoch, id))
    }
  }

  // ---- connections ---------------------------------------------------------------------------

  /**
   * Runs one command on the command connection, failing at once with a {@link NotSentError} while it is not connected
   * (nothing waits in an offline queue) and after `timeout` ms. `settled` runs when Redis has actually answered (or the
   * command failed).
   */
  async #command<T> (send: () => Promise<T>, settled?: () => void): Promise<T> {
    if (this.#closed) {
      settled?.()
      throw new NotSentError('the broker is closed')
    }
    const { status } = this.#commands
    if (status !== 'ready') {
      settled?.()
      throw new NotSentError(`Redis is not connected (${status})`)
    }
    const sent = send().catch(markNotSent)
    if (settled) sent.then(settled, settled)
    try {
      const answer = await withTimeout(sent, this.#timeout)
      this.#answered()
      return answer
    } catch (err) {
      if (err instanceof NoAnswerError) this.#notAnswered()
      throw err
    }
  }

  /** Redis answered a call: if it had stopped answering, that outage is over. */
  #answered (): void {
    if (!this.#unresponsive) return
    this.#unresponsive = false
    this.#log.info('pov-realtime: Redis answers again')
  }

  /** A call got no answer within `timeout`: once per outage, a hung or paused Redis is a broker fault. */
  #notAnswered (): void {
    if (this.#unresponsive || this.#closed) return
    this.#unresponsive = true
    this.#faulted()
    this.#log.warn({ timeout: this.#timeout }, 'pov-realtime: Redis did not answer in time; calls fail until it does')
  }

  /**
   * Logs a connection's loss once per outage (an error, or Redis closing it: a restart, `CLIENT KILL`, an output
   * buffer limit), counts it as a broker fault, and logs its return. The subscriber connection's return also has every
   * watched PoV read its gap from the stream (see `ordered-channel.ts`); no socket is closed for it.
   */
  #watchHealth (connection: RedisClient, role: string): void {
    const lost = (err?: Error) => {
      if (this.#down.has(connection) || this.#closed) return
      this.#down.add(connection)
      this.#faulted()
      this.#log.warn(err ? { err } : {}, `pov-realtime: Redis ${role} connection lost; reconnecting`)
    }
    const restored = () => {
      if (this.#down.delete(connection)) this.#log.info(`pov-realtime: Redis ${role} connection restored`)
    }
    connection.on('error', (err: Error) => lost(err))
    connection.on('close', () => lost())
    connection.on('ready', restored)
    if (this.#sharded && role === 'subscriber') {
      // A Cluster subscriber stays 'ready' while one of its per-master connections is lost (killed, its master
      // failed): ioredis says so with '-node', and 'subscribersReady' once it has replaced them. While a master is
      // down, ioredis tries it again round after round, each round failing to connect (an 'error') and still ending
      // with 'subscribersReady': such a round restored nothing, so the outage goes on, counted and logged once (a
      // master killed was counted 97–166 times before its replica took over).
      let failedThisRound = false
      connection.on('error', () => { failedThisRound = true })
      connection.on('-node', () => lost())
      connection.on('subscribersReady', () => {
        if (!failedThisRound) restored()
        failedThisRound = false
      })
    }
  }

  #faulted (): void {
    this.#onFault?.()
  }
}

/** Whether `cursor` names an entry at or before `position` in the same history. */
function isAtOrBefore (cursor: string, position: StreamPosition): boolean {
  const other = parseCursor(cursor)
  return other !== undefined && other.epoch === position.epoch && compareStreamIds(other.id, position.id) <= 0
}
