/**
 * A Redis broker started on its own, with its optional parts (presence, read marks) started too, and sinks that record
 * what the broker hands the plugin. The sinks stand where the plugin does; everything else (Redis, pub/sub, other
 * brokers) is real.
 */
import Fastify from 'fastify'
import type {
  Broker, BrokerEntry, BrokerSink, HistoryOptions, MemberState, PresenceRelay, PresenceSink, ReadMarkStore, ReadSink
} from '../../lib/broker.js'
import { createRedisBroker, type RedisBrokerOptions } from '../../lib/redis/index.js'
import type { RedisTarget } from './redis-targets.js'
import type { ReadMark } from '../../types/messages.js'
import { throughTcpProxies } from './redis-proxied.js'
import type { Teardown } from './server.js'
import type { TcpProxy } from './tcp-proxy.js'

/** One call of a presence sink, as recorded. */
export interface MemberEvent {
  readonly at: number
  readonly povId: string
  readonly origin: string
  readonly userId: string
  readonly state: MemberState | null
}

export interface TypingEvent {
  readonly povId: string
  readonly origin: string
  readonly userId: string
  readonly typing: boolean
}

/** Records what a broker reports of other instances' presence, and the view that adds up to. */
export class PresenceRecorder implements PresenceSink {
  readonly events: MemberEvent[] = []
  readonly typings: TypingEvent[] = []
  /** PoV → `<origin>/<userId>` → state, as the reports so far add up. */
  readonly #view = new Map<string, Map<string, MemberState>>()

  member (povId: string, origin: string, userId: string, state: MemberState | null): void {
    this.events.push({ at: Date.now(), povId, origin, userId, state })
    let members = this.#view.get(povId)
    if (!members) this.#view.set(povId, members = new Map())
    if (state) members.set(`${origin}/${userId}`, state)
    else members.delete(`${origin}/${userId}`)
  }

  typing (povId: string, origin: string, userId: string, typing: boolean): void {
    this.typings.push({ povId, origin, userId, typing })
  }

  /** The members of `povId` as reported: `<userId>:<status>`, sorted. */
  view (povId: string): string[] {
    return [...this.#view.get(povId) ?? []].map(([key, state]) => `${key.slice(key.indexOf('/') + 1)}:${state.status}`).sort()
  }

  /** Whether the reports leave any member of instance `origin` on `povId`. */
  holds (povId: string, origin: string): boolean {
    return [...this.#view.get(povId)?.keys() ?? []].some((key) => key.startsWith(`${origin}/`))
  }
}

/** Records the read marks a broker hands the plugin. */
export class ReadRecorder implements ReadSink {
  readonly marks: Array<{ povId: string } & ReadMark> = []

  read (povId: string, mark: ReadMark): void {
    this.marks.push({ povId, ...mark })
  }
}

/** Records the activities a broker delivers (their ids). */
export class ActivityRecorder implements BrokerSink {
  readonly ids: string[] = []

  deliver (_povId: string, entry: BrokerEntry): number {
    this.ids.push((JSON.parse(entry.frame.toString()) as { data: { id: string } }).data.id)
    return 1
  }

  interrupted (): void {}
}

/**
 * Records what a broker hands its sink, interruptions included, in order: `p1:e0`, `p1:interrupted after e6` (the
 * activity whose cursor the interruption names; `after nothing` for `null`, `after ?` for a cursor never delivered).
 */
export class FeedRecorder implements BrokerSink {
  readonly events: string[] = []
  readonly #idOfCursor = new Map<string, string>()

  deliver (povId: string, entry: BrokerEntry): number {
    const id = (JSON.parse(entry.frame.toString()) as { data: { id: string } }).data.id
    this.#idOfCursor.set(entry.cursor, id)
    this.events.push(`${povId}:${id}`)
    return 1
  }

  interrupted (povId: string, cursor: string | null): void {
    this.events.push(`${povId}:interrupted after ${cursor === null ? 'nothing' : this.#idOfCursor.get(cursor) ?? '?'}`)
  }
}

/** What a gap test needs: one broker that the proxies can cut off from Redis, and one that publishes meanwhile. */
export interface CutOffBrokers {
  /** Between `cutOff` and the target's Redis: `proxy.cut()` and `proxy.restore()` make the gap. */
  readonly proxy: Pick<TcpProxy, 'cut' | 'restore'>
  /** Reaches Redis through the proxies (retrying every 100 ms); a history of 3 entries for 60 s. */
  readonly cutOff: Broker
  /** What `cutOff` hands its plugin. */
  readonly feed: FeedRecorder
  /** Reaches Redis directly, under the same key prefix. */
  readonly publisher: Broker
}

/** Two bare brokers (no presence, no read marks) on `redis` under the test's key prefix; closed at teardown. */
export async function startCutOffBrokers (t: Teardown, redis: RedisTarget): Promise<CutOffBrokers> {
  const proxy = await throughTcpProxies(t, redis)
  const start = async (broker: Broker, sink: BrokerSink): Promise<Broker> => {
    await broker.start({ sink, history: { size: 3, ttl: 60_000 }, log: Fastify().log })
    t.teardown(() => broker.close())
    return broker
  }
  const feed = new FeedRecorder()
  const cutOff = await start(createRedisBroker({ redis: proxy.redis, keyPrefix: redis.keyPrefix }), feed)
  const publisher = await start(redis.createBroker(), new FeedRecorder())
  return { proxy, cutOff, feed, publisher }
}

export interface StartedBroker {
  readonly broker: Broker
  readonly relay: PresenceRelay
  readonly store: ReadMarkStore
  readonly presence: PresenceRecorder
  readonly reads: ReadRecorder
  readonly activities: ActivityRecorder
}

export interface BrokerSettings {
  /** ioredis options, a URL or start-up nodes (`redis-proxied.ts`); default the shared Redis. */
  readonly redis?: RedisBrokerOptions['redis']
  /** A target of `redis-targets.ts` instead (its own key prefix, which `keyPrefix` must repeat). */
  readonly target?: RedisTarget
  readonly keyPrefix: string
  readonly presenceTtl?: number
  readonly history?: HistoryOptions | false
}

/** A started Redis broker with presence and read marks started; closed at teardown (closing it twice is harmless). */
export async function startBroker (t: Teardown, settings: BrokerSettings): Promise<StartedBroker> {
  const broker = settings.target
    ? settings.target.createBroker({ presenceTtl: settings.presenceTtl })
    : createRedisBroker({
      redis: settings.redis ?? { host: '127.0.0.1', port: 6379, retryStrategy: () => 100 },
      keyPrefix: settings.keyPrefix,
      presenceTtl: settings.presenceTtl
    })
  const activities = new ActivityRecorder()
  const presence = new PresenceRecorder()
  const reads = new ReadRecorder()
  await broker.start({ sink: activities, history: settings.history ?? { size: 100, ttl: 60_000 }, log: Fastify().log })
  t.teardown(() => broker.close())
  await broker.presence!.start(presence)
  await broker.readMarks!.start(reads)
  return { broker, relay: broker.presence!, store: broker.readMarks!, presence, reads, activities }
}

export const active = (info: Record<string, unknown> = {}): MemberState => ({ status: 'active', info })
export const idle = (info: Record<string, unknown> = {}): MemberState => ({ status: 'idle', info })
