/**
 * One socket's subscriptions: `subscribe` (checked with `authorizeSubscription`, watched, then answered in the
 * protocol's order: the replay, `subscribed` with the read state, the presence snapshot, what arrived meanwhile),
 * `unsubscribe`, their end by revocation or a refused re-check (`unsubscribed` with `reason: 'revoked'`), and their
 * release when the socket closes. A subscription's receiver is the socket's writer, so a live activity goes from the
 * index to the socket without passing through the session.
 *
 * A revocation or a re-check comes from outside the socket's message queue, so it may land while a `subscribe` waits
 * (on the app's check, the broker, the read state): after each wait, a `subscribe` goes on only if its entry in
 * `#byPov` is still the one it put there.
 *
 * Most sockets watch one PoV: that entry is kept as it is, and a `Map` made only for a second one (an empty `Map` and
 * its table cost some 280 bytes, a quarter of what the plugin adds to an idle connection).
 */
import type { FastifyBaseLogger } from 'fastify'
import { ErrorCode } from '../../types/wire-constants.js'
import type { SubscribeMessage } from '../../types/messages.js'
import type { Broker, Replay } from '../broker.js'
import type { PovRealtimeUser, ResolvedOptions, UpgradeRequestView } from '../options.js'
import type { PresenceMessages } from '../presence/presence-messages.js'
import type { ReadReceiptsMessages } from '../read-receipts/read-receipts-messages.js'
import type { ReadState } from '../read-receipts/read-receipts-feature.js'
import type { StatsCounters } from '../stats.js'
import { Subscription } from '../subscription-index.js'
import { checkSubscription, type AuthorizationAnswer } from '../auth/subscription-check.js'
import type { SocketLimitTrips } from './socket-limit-trips.js'
import type { SocketWriter } from './socket-writer.js'

/** What subscriptions need of the hub. */
export interface SubscriptionHost {
  readonly options: ResolvedOptions
  readonly broker: Broker
  readonly stats: StatsCounters
  /** Adds a live subscription to the index (watching the PoV in the broker if it is the first). */
  watch (subscription: Subscription): Promise<void>
  /** Removes a subscription from the index (unwatching the PoV if it was the last). */
  unwatch (subscription: Subscription): void
}

/** What subscriptions need of the socket's session (its features too: not kept again in the subscriptions). */
export interface SubscribingSession extends SubscribingFeatures {
  /** The user now (an in-band `auth` may have refreshed their claims). */
  readonly user: PovRealtimeUser
  /** What `authorizeSubscription` is told of the upgrade request (kept only when that option is set). */
  readonly upgrade: UpgradeRequestView | undefined
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

/** A `subscribe` being authorized: what `#byPov` holds for its PoV until the subscription exists. */
interface Authorizing {
  readonly povId: string
}

type Entry = Subscription | Authorizing

export class SocketSubscriptions {
  readonly #host: SubscriptionHost
  readonly #session: SubscribingSession
  readonly #writer: SocketWriter
  /** PoVs this socket watches, or is being authorized for: none, the one entry, or a `Map` of two or more. */
  #byPov: Entry | Map<string, Entry> | undefined

  constructor (host: SubscriptionHost, session: SubscribingSession, writer: SocketWriter) {
    this.#host = host
    this.#session = session
    this.#writer = writer
  }

  /** Whether the subscription to `povId` was authorized (and not ended). */
  watches (povId: string): boolean {
    return this.#entry(povId) instanceof Subscription
  }

  async subscribe ({ povId, since }: SubscribeMessage): Promise<void> {
    const { options } = this.#host
    const current = this.#entry(povId)
    if (current instanceof Subscription) return await this.#subscribeAgain(current)
    if (this.#size() >= options.maxSubscriptions) {
      this.#session.limits.trip('maxSubscriptions', { max: options.maxSubscriptions })
      return this.#session.sendError(ErrorCode.SUBSCRIPTION_LIMIT, `at most ${options.maxSubscriptions} PoVs per connection`, povId)
    }
    const authorizing: Authorizing = { povId }
    this.#setEntry(authorizing)
    const answer = await this.#check(povId)
    if (this.#entry(povId) !== authorizing) return // revoked meanwhile (and told so), or the socket closed
    if (answer.verdict !== 'granted') {
      this.#deleteEntry(povId)
      this.#logFault(answer, povId, 'refusing the subscription')
      if (!this.#writer.closed) this.#refuse(povId)
      return
    }
    const { presence } = this.#session
    if (presence && !presence.hasInfo) await presence.resolveInfo(this.#session.user)
    if (this.#writer.closed || this.#entry(povId) !== authorizing) return
    const subscription = new Subscription(this.#writer, povId)
    // Live entries wait while the replay or the read state is fetched, so that they follow `subscribed`.
    if (since !== undefined || this.#session.readReceipts) subscription.pending = []
    this.#setEntry(subscription)
    await this.#host.watch(subscription)
    if (this.#writer.closed || this.#entry(povId) !== subscription) return
    if (subscription.pending === null) {
      this.#writer.answer({ type: 'subscribed', povId })
      this.#joinPresence(povId)
      return
    }
    await this.#answerHeld(subscription, since)
  }

  /** `unsubscribe`: always answered, whether or not the socket watched the PoV. */
  unsubscribe (povId: string): void {
    const subscription = this.#entry(povId)
    this.#deleteEntry(povId)
    if (subscription instanceof Subscription) this.#release(subscription)
    this.#writer.answer({ type: 'unsubscribed', povId })
  }

  /**
   * Ends the socket's subscription to `povId` (or its `subscribe` being authorized): the client is told `unsubscribed`
   * with `reason: 'revoked'`, and nothing of the PoV reaches the socket after it. Nothing when it does not watch it.
   */
  revoke (povId: string): void {
    const entry = this.#entry(povId)
    if (entry === undefined) return
    this.#deleteEntry(povId)
    if (entry instanceof Subscription) {
      this.#release(entry)
      this.#host.stats.revoked++
    }
    this.#session.log.info({ userId: this.#session.user.userId, povId }, 'pov-realtime: subscription revoked')
    this.#writer.answer({ type: 'unsubscribed', povId, reason: 'revoked' })
  }

  /**
   * Checks every subscription again with `authorizeSubscription`, for the user as they are now (an in-band `auth` may
   * have changed their claims); a refused one is revoked. A check that throws or times out keeps the subscription
   * (logged; the next re-check decides): a fault of the app's check must not end every user's access at once.
   */
  async reauthorize (): Promise<void> {
    const subscriptions = [...this.#entries()].filter((entry) => entry instanceof Subscription)
    await Promise.all(subscriptions.map(async (subscription) => {
      const answer = await this.#check(subscription.povId)
      if (this.#writer.closed || this.#entry(subscription.povId) !== subscription) return
      if (answer.verdict === 'refused') return this.revoke(subscription.povId)
      if (answer.verdict === 'failed') {
        this.#session.log.warn({ err: answer.error, userId: this.#session.user.userId, povId: subscription.povId },
          'pov-realtime: authorizeSubscription failed on a re-check; the subscription stays until the next one')
      }
    }))
  }

  /** The socket closed: every subscription is released. */
  releaseAll (): void {
    for (const subscription of this.#entries()) {
      if (subscription instanceof Subscription) this.#release(subscription)
    }
    this.#byPov = undefined
  }

  /** Revoked as a whole (the socket is being closed with 4003): every subscription ends, counted as revoked. */
  revokeAll (): void {
    for (const entry of this.#entries()) {
      if (entry instanceof Subscription) this.#host.stats.revoked++
    }
    this.releaseAll()
  }

  /**
   * A `subscribe` of a PoV the socket already watches: checked again, since access may have been withdrawn. Granted,
   * it is idempotent (still one subscription, one copy of each activity) and answered as the first one was; refused,
   * the subscription ends and the answer is `FORBIDDEN`, with nothing of the PoV before it.
   */
  async #subscribeAgain (subscription: Subscription): Promise<void> {
    const { povId } = subscription
    const answer = await this.#check(povId)
    if (this.#writer.closed) return
    if (this.#entry(povId) !== subscription) return this.#refuse(povId) // revoked meanwhile
    if (answer.verdict !== 'granted') {
      this.#logFault(answer, povId, 'ending the subscription')
      this.#deleteEntry(povId)
      this.#release(subscription)
      this.#host.stats.revoked++
      return this.#refuse(povId)
    }
    const readState = await this.#readState(povId)
    if (this.#writer.closed) return
    if (this.#entry(povId) !== subscription) return this.#refuse(povId)
    this.#writer.answer({ type: 'subscribed', povId, ...readState })
    this.#joinPresence(povId)
  }

  #entry (povId: string): Entry | undefined {
    const byPov = this.#byPov
    if (byPov instanceof Map) return byPov.get(povId)
    return byPov?.povId === povId ? byPov : undefined
  }

  /** Puts `entry` in place of its PoV's current one, if any. */
  #setEntry (entry: Entry): void {
    const byPov = this.#byPov
    if (byPov instanceof Map) byPov.set(entry.povId, entry)
    else if (byPov === undefined || byPov.povId === entry.povId) this.#byPov = entry
    else this.#byPov = new Map([[byPov.povId, byPov], [entry.povId, entry]])
  }

  #deleteEntry (povId: string): void {
    const byPov = this.#byPov
    if (!(byPov instanceof Map)) {
      if (byPov?.povId === povId) this.#byPov = undefined
      return
    }
    byPov.delete(povId)
    // Back to one PoV: the Map goes (a socket that watched two PoVs once does not pay for it for life).
    if (byPov.size === 1) this.#byPov = byPov.values().next().value
  }

  #size (): number {
    const byPov = this.#byPov
    return byPov instanceof Map ? byPov.size : byPov === undefined ? 0 : 1
  }

  #entries (): Iterable<Entry> {
    const byPov = this.#byPov
    return byPov instanceof Map ? byPov.values() : byPov === undefined ? [] : [byPov]
  }

  #check (povId: string): Promise<AuthorizationAnswer> {
    return checkSubscription(this.#host.options, this.#session.user, povId, this.#session.upgrade)
  }

  #refuse (povId: string): void {
    this.#session.sendError(ErrorCode.FORBIDDEN, 'not allowed to watch this PoV', povId)
  }

  /** A check that threw or timed out is the app's fault: logged at error. */
  #logFault (answer: AuthorizationAnswer, povId: string, outcome: string): void {
    if (answer.verdict !== 'failed') return
    this.#session.log.error({ err: answer.error, userId: this.#session.user.userId, povId },
      `pov-realtime: authorizeSubscription threw or timed out; ${outcome}`)
  }

  /** `presence` on, right after `subscribed` (and the replay): the member joins, if new, and gets the snapshot. */
  #joinPresence (povId: string): void {
    if (!this.#writer.closed) this.#session.presence?.join(povId)
  }

  /**
   * Answers a subscription whose live entries are held: the activities the client missed after `since` (when it
   * resumes), then `subscribed` (with the read state when read receipts are on), then the presence snapshot (which
   * the protocol puts right after `subscribed`), then what arrived meanwhile in arrival order: live entries (each
   * once) and other messages of the PoV (`read` events). The replay and what was held are a catch-up, paced by what
   * the client reads (`SocketWriter.roomFor`); what arrives while it waits is held too, so the order stays.
   */
  async #answerHeld (subscription: Subscription, since: string | undefined): Promise<void> {
    const { povId } = subscription
    const replay = since === undefined ? undefined : await this.#replay(povId, since)
    const readState = await this.#readState(povId)
    const current = (): boolean => !this.#writer.closed && this.#entry(povId) === subscription
    if (!current()) return
    const sent = new Set<string>()
    for (const entry of replay?.entries ?? []) {
      let room = this.#writer.roomFor(entry.frame.length)
      if (typeof room !== 'boolean') room = await room && current() // the client must read first
      if (!room) return
      this.#writer.sendActivity(entry.frame)
      sent.add(entry.cursor)
    }
    this.#writer.answer({ type: 'subscribed', povId, ...(replay && { recovered: replay.recovered }), ...readState })
    this.#joinPresence(povId)
    const pending = subscription.pending ?? []
    while (pending.length > 0) {
      const held = pending[0]!
      let room = this.#writer.roomFor(Buffer.isBuffer(held) ? held.length : held.frame.length)
      if (typeof room !== 'boolean') room = await room && current()
      if (!room) return
      pending.shift()
      if (Buffer.isBuffer(held)) this.#writer.sendMessage(held)
      else if (!sent.has(held.cursor) && !replay?.held?.(held.cursor)) this.#writer.sendActivity(held.frame)
    }
    subscription.pending = null
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
    const { readReceipts } = this.#session
    return readReceipts ? await readReceipts.stateOf(povId) : {}
  }

  /** Leaves the PoV's members (ending this socket's typing there), then unwatches it. */
  #release (subscription: Subscription): void {
    this.#session.presence?.leave(subscription.povId)
    this.#host.unwatch(subscription)
  }
}
