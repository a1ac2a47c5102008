/**
 * The seam between the plugin and whatever carries activities between instances.
 * The in-process default lives in `in-process/`; `createRedisBroker` implements the same interface.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MemberStatus, ReadMark } from '../types/messages.js'

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

/**
 * A message for every instance's sockets rather than for a PoV's subscribers: today `fastify.povRealtime.revoke`.
 * `revoke` ends `userId`'s subscriptions of `povId` on every instance, or, without `povId`, closes every socket of
 * `userId` with 4003.
 */
export interface ControlMessage {
  readonly type: 'revoke'
  readonly userId: string
  readonly povId?: string
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
   * cut off), so its subscribers' feeds have a gap that no replay can fill. Delivery goes on after `cursor` (every
   * entry the broker still held after the gap has been delivered by now), or, with `null`, the PoV has no entry left
   * to name. The plugin tells each subscriber in-band (`resync`); it closes no socket for it.
   */
  interrupted (povId: string, cursor: string | null): void
  /**
   * Apply a control message (see {@link Broker.control}) to this instance's sockets, synchronously. The plugin's sink
   * always has it; optional for sinks that stand in for the plugin in a broker's own tests.
   */
  control? (message: ControlMessage): void
}

/** History settings resolved from the plugin's `history` option. */
export interface HistoryOptions {
  /** Entries kept per PoV. */
  readonly size: number
  /** Milliseconds an entry is kept. */
  readonly ttl: number
  /**
   * Bytes of activity frames one PoV's window may hold (the oldest go first). The plugin always sets it; a broker that
   * keeps its history outside the process may leave it to its store (the Redis broker does: see docs/redis.md).
   */
  readonly maxBytes?: number
  /** Bytes of activity frames all windows of one instance may hold together (the least recently published PoVs give way first). */
  readonly maxTotalBytes?: number
}

/** A broker's bound that dropped data, counted in `stats().limitTrips` when the broker reports it. */
export type BrokerLimit = 'historyMaxBytes' | 'historyMaxTotalBytes' | 'readMarksPerUser' | 'readMarksPerPov'

export interface BrokerStartContext {
  readonly sink: BrokerSink
  /** `false` when the plugin's `history` option is off: keep no history, answer every replay `recovered: false`. */
  readonly history: HistoryOptions | false
  readonly log: FastifyBaseLogger
  /** Optional to call: one of the broker's bounds dropped data (an entry of a window, a read mark). */
  readonly limitTripped?: (limit: BrokerLimit) => void
  /**
   * Optional to call: the broker met a fault of its backing service (a connection lost, a server that stopped
   * answering), once per outage; counted in `stats().brokerFaults`. The broker logs the line that says what it was.
   */
  readonly faulted?: () => void
}

/** What one instance says of a member: the combined status of that user's sockets there, and their public `info`. */
export interface MemberState {
  readonly status: MemberStatus
  readonly info: Readonly<Record<string, unknown>>
}

/** One instance's entry for a member, as {@link PresenceRelay.members} lists them. */
export interface RemoteMember {
  /** The instance that holds the member (see {@link PresenceRelay.instanceId}). */
  readonly origin: string
  readonly userId: string
  readonly state: MemberState
}

/** How a broker hands other instances' presence to the plugin. Never called for this instance's own announcements. */
export interface PresenceSink {
  /**
   * Instance `origin` now holds `userId` on `povId` in `state`, or no longer holds them (`null`: their last socket
   * there left the PoV, or the instance is gone).
   */
  member (povId: string, origin: string, userId: string, state: MemberState | null): void
  /** `userId`, on instance `origin`, started or stopped typing on `povId`. */
  typing (povId: string, origin: string, userId: string, typing: boolean): void
}

/**
 * The optional part of a broker that carries presence between instances (the `presence` option). The in-process
 * default has none: one instance holds every member. A broker for several instances must have one for `presence`.
 *
 * Delivery: for every PoV this instance watches (between `Broker.watch` and `Broker.unwatch`), the broker calls the
 * sink for each other instance's member already there (once the PoV is watched, before or soon after `watch`
 * resolves) and for every later change, in order per origin. When an instance dies without a clean shutdown, its
 * members are reported gone (`member(..., null)`) within a bounded time the broker documents.
 */
export interface PresenceRelay {
  /** This instance's name among all instances (unique per process start). */
  readonly instanceId: string
  /** Called once, after `Broker.start`. */
  start (sink: PresenceSink): void | Promise<void>
  /** This instance's state of `userId` on `povId` changed (`null`: none of its sockets watch the PoV any more). */
  announce (povId: string, userId: string, state: MemberState | null): void
  /** This instance's `userId` started or stopped typing on `povId`; other instances pass it on to their sockets. */
  typing (povId: string, userId: string, typing: boolean): void
  /** Every other instance's members of `povId` now (for `fastify.povRealtime.presence` on a PoV this instance does not watch). */
  members (povId: string): Promise<RemoteMember[]>
}

/** How a broker hands moved read marks to the plugin: for marks moved on any instance, this one included. */
export interface ReadSink {
  read (povId: string, mark: ReadMark): void
}

/**
 * The optional part of a broker that stores read marks (the `readReceipts` option): one mark per user per PoV, a
 * cursor that only moves forward, kept beyond the history window (and, for a shared store, beyond restarts).
 */
export interface ReadMarkStore {
  /** Called once, after `Broker.start`. */
  start (sink: ReadSink): void | Promise<void>
  /**
   * Moves `userId`'s mark on `povId` to `cursor` if it is newer than the current one. Resolves the new mark (and
   * hands it to every instance's sink), or `null` when it did not move. Rejects with `POV_REALTIME_INVALID_CURSOR`
   * when `cursor` is not one of `povId`'s cursors or is newer than its latest activity.
   */
  markRead (povId: string, userId: string, cursor: string, readAt: string): Promise<ReadMark | null>
  /** Every mark on `povId` (users without one are not listed). */
  reads (povId: string): Promise<ReadMark[]>
  /** `userId`'s mark on `povId`, or `null`. */
  markOf (povId: string, userId: string): Promise<ReadMark | null>
  /**
   * How many of `povId`'s activities the history holds after `cursor` (all of them for `null`, or for a cursor of
   * history that is gone); `null` when the plugin's `history` option is off.
   */
  unreadAfter (povId: string, cursor: string | null): Promise<number | null>
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
  /**
   * Optional: carries `message` to every instance, this one included (its sink's `control`), and resolves once each
   * has applied it; rejects with `POV_REALTIME_BROKER_UNAVAILABLE` when that cannot be confirmed. A broker without it
   * gets revocations applied to this instance only, which is right for one instance and wrong for several.
   */
  control? (message: ControlMessage): Promise<void>
  /** Carries presence between instances; see {@link PresenceRelay}. */
  readonly presence?: PresenceRelay
  /** Stores read marks; see {@link ReadMarkStore}. */
  readonly readMarks?: ReadMarkStore
}
