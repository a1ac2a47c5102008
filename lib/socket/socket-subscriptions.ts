/**
 * One socket's subscriptions: `subscribe` (checked with `authorizeSubscription`, watched, then answered in the
 * protocol's order: the replay, `subscribed` with the read state, the presence snapshot, what arrived meanwhile),
 * `unsubscribe`, and their release when the socket closes. A subscription's receiver is the socket's writer, so a
 * live activity goes from the index to the socket without passing through the session.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { ErrorCode } from '../../types/wire-constants.js'
import type { SubscribeMessage } from '../../types/messages.js'
import type { Broker, Replay } from '../broker.js'
import type { PovRealtimeUser, ResolvedOptions } from '../options.js'
import type { PresenceMessages } from '../presence/presence-messages.js'
import type { ReadReceiptsMessages } from '../read-receipts/read-receipts-messages.js'
import type { ReadState } from '../read-receipts/read-receipts-feature.js'
import { Subscription } from '../subscription-index.js'
import type { SocketLimitTrips } from './socket-limit-trips.js'
import type { SocketWriter } from './socket-writer.js'

/** What subscriptions need of the hub. */
export interface SubscriptionHost {
  readonly options: ResolvedOptions
  readonly broker: Broker
  /** Adds a live subscription to the index (watching the PoV in the broker if it is the first). */
  watch (subscription: Subscription): Promise<void>
  /** Removes a subscription from the index (unwatching the PoV if it was the last). */
  unwatch (subscription: Subscription): void
}

/** What subscriptions need of the socket's session. */
export interface SubscribingSession {
  /** The user now (an in-band `auth` may have refreshed their claims). */
  readonly user: PovRealtimeUser
  /** The upgrade request, for `authorizeSubscription`. */
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
  /** The socket's fairness limits. */
  readonly limits: SocketLimitTrips
  /** Answers the client with an `error` (counted as a rejection). */
  sendError (code: ErrorCode, message: string, povId?: string): void
}

/** The socket's features that take part in a subscribe, when they are on. */
export interface SubscribingFeatures {
  readonly presence: PresenceMessages | undefined
  readonly readReceipts: ReadReceiptsMessages | undefined
}

export class SocketSubscriptions {
  readonly #host: SubscriptionHost
  readonly #session: SubscribingSession
  readonly #writer: SocketWriter
  readonly #presence: PresenceMessages | undefined
  readonly #readReceipts: ReadReceiptsMessages | undefined
  /** PoVs this socket watches, or is being authorized for (then `null`). */
  readonly #byPov = new Map<string, Subscription | null>()

  constructor (host: SubscriptionHost, session: SubscribingSession, writer: SocketWriter, features: SubscribingFeatures) {
    this.#host = host
    this.#session = session
    this.#writer = writer
    this.#presence = features.presence
    this.#readReceipts = features.readReceipts
  }

  /** Whether the subscription to `povId` was authorized (and not ended). */
  watches (povId: string): boolean {
    return Boolean(this.#byPov.get(povId))
  }

  async subscribe ({ povId, since }: SubscribeMessage): Promise<void> {
    const { options } = this.#host
    if (this.#byPov.has(povId)) {
      // Idempotent: still one subscription, still one copy of each activity.
      this.#writer.answer({ type: 'subscribed', povId, ...await this.#readState(povId) })
      this.#joinPresence(povId)
      return
    }
    if (this.#byPov.size >= options.maxSubscriptions) {
      this.#session.limits.trip('maxSubscriptions', { max: options.maxSubscriptions })
      return this.#session.sendError(ErrorCode.SUBSCRIPTION_LIMIT, `at most ${options.maxSubscriptions} PoVs per connection`, povId)
    }
    this.#byPov.set(povId, null)
    if (!await this.#mayWatch(povId)) {
      this.#byPov.delete(povId)
      if (!this.#writer.closed) this.#session.sendError(ErrorCode.FORBIDDEN, 'not allowed to watch this PoV', povId)
      return
    }
    if (this.#presence && !this.#presence.hasInfo) await this.#presence.resolveInfo(this.#session.user)
    if (this.#writer.closed) return
    const subscription = new Subscription(this.#writer, povId)
    // Live entries wait while the replay or the read state is fetched, so that they follow `subscribed`.
    if (since !== undefined || this.#readReceipts) subscription.pending = []
    this.#byPov.set(povId, subscription)
    await this.#host.watch(subscription)
    if (this.#writer.closed) return
    if (subscription.pending === null) {
      this.#writer.answer({ type: 'subscribed', povId })
      this.#joinPresence(povId)
      return
    }
    await this.#answerHeld(subscription, since)
  }

  /** `unsubscribe`: always answered, whether or not the socket watched the PoV. */
  unsubscribe (povId: string): void {
    const subscription = this.#byPov.get(povId)
    this.#byPov.delete(povId)
    if (subscription) this.#release(subscription)
    this.#writer.answer({ type: 'unsubscribed', povId })
  }

  /** The socket closed: every subscription is released. */
  releaseAll (): void {
    for (const subscription of this.#byPov.values()) {
      if (subscription) this.#release(subscription)
    }
    this.#byPov.clear()
  }

  /** `presence` on, right after `subscribed` (and the replay): the member joins, if new, and gets the snapshot. */
  #joinPresence (povId: string): void {
    if (!this.#writer.closed) this.#presence?.join(povId)
  }

  async #mayWatch (povId: string): Promise<boolean> {
    const authorize = this.#host.options.authorizeSubscription
    if (!authorize) return true
    try {
      // Only a real `true` grants access: a truthy stray value (an unawaited promise, an object) does not.
      return await authorize(this.#session.user, povId, this.#session.request) === true
    } catch (err) {
      this.#session.log.error({ err, povId }, 'pov-realtime: authorizeSubscription threw; refusing the subscription')
      return false
    }
  }

  /**
   * Answers a subscription whose live entries are held: the activities the client missed after `since` (when it
   * resumes), then `subscribed` (with the read state when read receipts are on), then the presence snapshot (which
   * the protocol puts right after `subscribed`), then what arrived meanwhile in arrival order: live entries (each
   * once) and other messages of the PoV (`read` events).
   */
  async #answerHeld (subscription: Subscription, since: string | undefined): Promise<void> {
    const { povId } = subscription
    const replay = since === undefined ? undefined : await this.#replay(povId, since)
    const readState = await this.#readState(povId)
    if (this.#writer.closed || this.#byPov.get(povId) !== subscription) return
    const sent = new Set<string>()
    for (const entry of replay?.entries ?? []) {
      this.#writer.sendActivity(entry.frame)
      sent.add(entry.cursor)
    }
    this.#writer.answer({ type: 'subscribed', povId, ...(replay && { recovered: replay.recovered }), ...readState })
    this.#joinPresence(povId)
    const pending = subscription.pending ?? []
    subscription.pending = null
    for (const held of pending) {
      if (Buffer.isBuffer(held)) this.#writer.sendMessage(held)
      else if (!sent.has(held.cursor) && !replay?.held?.(held.cursor)) this.#writer.sendActivity(held.frame)
    }
  }

  async #replay (povId: string, since: string): Promise<Replay> {
    try {
      return await this.#host.broker.replay(povId, since)
    } catch (err) {
      this.#session.log.warn({ err, povId }, 'pov-realtime: history unavailable; answering recovered: false')
      return { recovered: false, entries: [] }
    }
  }

  /** The read state for `subscribed`: none when read receipts are off. */
  async #readState (povId: string): Promise<Partial<ReadState>> {
    return this.#readReceipts ? await this.#readReceipts.stateOf(povId) : {}
  }

  /** Leaves the PoV's members (ending this socket's typing there), then unwatches it. */
  #release (subscription: Subscription): void {
    this.#presence?.leave(subscription.povId)
    this.#host.unwatch(subscription)
  }
}
