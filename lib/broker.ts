/**
 * The seam between the plugin and whatever carries activities between instances.
 * The in-process default lives in `in-process-broker.ts`; `createRedisBroker` implements the same interface.
 */
import type { FastifyBaseLogger } from 'fastify'

/** One published activity, as the broker hands it back: its cursor and the ready-to-send frame. */
export interface BrokerEntry {
  /** Opaque, ordered per PoV; unique within one history (see {@link Broker.replay}). */
  readonly cursor: string
  /** The complete `activity` message, serialized once and shared by every recipient. */
  readonly frame: Buffer
}

/** The answer to a resume request. */
export interface Replay {
  /** `true` when `entries` are exactly what came after the cursor; `false` when the gap cannot be filled. */
  readonly recovered: boolean
  /** The missed entries, oldest first (empty when `recovered` is false). */
  readonly entries: readonly BrokerEntry[]
  /**
   * Optional: whether the subscriber already holds the entry with this cursor (it is at or before `since`). A broker
   * whose live delivery on this instance can lag behind a cursor issued elsewhere sets it; the plugin then drops
   * such entries that reach the resuming subscription while the replay is sent, instead of sending them twice.
   */
  readonly held?: (cursor: string) => boolean
}

/** What the plugin gives a broker: the way into this instance's sockets. */
export interface BrokerSink {
  /**
   * Hand one entry to this instance's subscribers of `povId`; returns the number of sockets it was written to.
   * A broker calls it once per entry, in cursor order per PoV, for entries published on any instance.
   */
  deliver (povId: string, entry: BrokerEntry): number
  /**
   * Entries of `povId` were lost before they could be delivered (for example Redis lost them while this instance was
   * cut off), so its subscribers' feeds have a gap that no replay can fill. Delivery goes on after it.
   */
  interrupted (povId: string): void
}

/** History settings resolved from the plugin's `history` option. */
export interface HistoryOptions {
  /** Entries kept per PoV. */
  readonly size: number
  /** Milliseconds an entry is kept. */
  readonly ttl: number
}

export interface BrokerStartContext {
  readonly sink: BrokerSink
  /** `false` when the plugin's `history` option is off: keep no history, answer every replay `recovered: false`. */
  readonly history: HistoryOptions | false
  readonly log: FastifyBaseLogger
}

/**
 * A broker assigns each published activity its cursor, keeps the per-PoV history, and delivers every entry
 * (its own and other instances') to the sink. `replay` must be consistent with delivery: it returns only entries
 * the sink has already been given, so that a resuming subscriber gets nothing twice.
 */
export interface Broker {
  /** Called once, when the plugin registers. */
  start (context: BrokerStartContext): void | Promise<void>
  /**
   * Publish one validated activity of `povId`, given as its JSON text. Resolves once the entry has been delivered
   * to this instance's sink, with its cursor and the number of this instance's sockets it reached.
   */
  publish (povId: string, activityJson: string): Promise<{ cursor: string, delivered: number }>
  /** This instance now has a subscriber of `povId` (the first one). Resolves once delivery for it has begun. */
  watch (povId: string): void | Promise<void>
  /** This instance's last subscriber of `povId` has gone. */
  unwatch (povId: string): void | Promise<void>
  /** The entries of `povId` after `since`, if the history still holds all of them. */
  replay (povId: string, since: string): Promise<Replay>
  /** Release what the broker opened (never what the app passed in). */
  close (): Promise<void>
}
