/**
 * Which sockets of this instance watch which PoV: the fan-out structure. A broadcast walks only the subscribers
 * of its PoV, so its cost grows with them, not with the number of connected sockets.
 */
import type { BrokerEntry } from './broker.js'
import { wireFrameOf } from './activity-frame.js'
import { MAX_PENDING_DURING_REPLAY } from './constants.js'

/** The socket side of a subscription. */
export interface ActivityReceiver {
  /** Writes one activity (its payload, and the same already framed); returns whether it was written. */
  sendActivity (payload: Buffer, wire: Buffer): boolean
  /** The receiver cannot keep up: close it (4008). */
  closeSlowConsumer (): void
  /** Writes one serialized server message other than an activity (shared by every recipient). */
  sendMessage (payload: Buffer): void
}

/** What a subscription holds until its subscribe is answered: a live activity, or another message of the PoV. */
export type HeldMessage = BrokerEntry | Buffer

/**
 * Holds `message` while a subscribe is answered, or cuts a receiver that would hold too many. A function rather than a
 * private method: a class with private methods gives each instance a field of its own (8 bytes per subscription).
 */
function hold (pending: HeldMessage[], receiver: ActivityReceiver, message: HeldMessage): void {
  if (pending.length >= MAX_PENDING_DURING_REPLAY) receiver.closeSlowConsumer()
  else pending.push(message)
}

/** One socket watching one PoV. */
export class Subscription {
  /**
   * While the subscribe is being answered (a resume replayed, the read state fetched), what arrives for the PoV waits
   * here, in arrival order, so that nothing reaches the client before `subscribed`; `null` once the subscription is
   * live.
   */
  pending: HeldMessage[] | null = null

  constructor (readonly receiver: ActivityReceiver, readonly povId: string) {}

  deliver (entry: BrokerEntry, wire: Buffer): boolean {
    if (this.pending) {
      hold(this.pending, this.receiver, entry)
      return false
    }
    return this.receiver.sendActivity(entry.frame, wire)
  }

  /** Writes one serialized server message of the PoV, or holds it until the subscribe is answered. */
  send (payload: Buffer): void {
    if (this.pending) hold(this.pending, this.receiver, payload)
    else this.receiver.sendMessage(payload)
  }
}

export class SubscriptionIndex {
  readonly #byPov = new Map<string, Set<Subscription>>()
  #count = 0

  /** Adds a subscription; returns true when it is the PoV's first on this instance. */
  add (subscription: Subscription): boolean {
    let subscribers = this.#byPov.get(subscription.povId)
    const first = subscribers === undefined
    if (!subscribers) {
      subscribers = new Set()
      this.#byPov.set(subscription.povId, subscribers)
    }
    if (!subscribers.has(subscription)) {
      subscribers.add(subscription)
      this.#count++
    }
    return first
  }

  /** Removes a subscription; returns true when it was the PoV's last on this instance. */
  remove (subscription: Subscription): boolean {
    const subscribers = this.#byPov.get(subscription.povId)
    if (!subscribers?.delete(subscription)) return false
    this.#count--
    if (subscribers.size > 0) return false
    this.#byPov.delete(subscription.povId)
    return true
  }

  /** Hands `entry` to every subscriber of `povId`; returns how many sockets it was written to. */
  fanOut (povId: string, entry: BrokerEntry): number {
    const subscribers = this.#byPov.get(povId)
    if (!subscribers) return 0
    const wire = wireFrameOf(entry.frame)
    let written = 0
    for (const subscription of subscribers) {
      if (subscription.deliver(entry, wire)) written++
    }
    return written
  }

  /** Writes one serialized server message to every subscriber of `povId` (held for those not answered yet). */
  sendToAll (povId: string, payload: Buffer): void {
    for (const subscription of this.#byPov.get(povId) ?? []) subscription.send(payload)
  }

  /**
   * The feed of `povId` has a gap no replay can fill: every subscriber is told in-band with `resync` (held, like an
   * activity, for one whose subscribe is being answered), and stays subscribed. Returns how many were told.
   */
  resync (povId: string, cursor: string | null): number {
    const subscribers = this.#byPov.get(povId)
    if (!subscribers) return 0
    const payload = Buffer.from(JSON.stringify({ type: 'resync', povId, cursor }))
    for (const subscription of subscribers) subscription.send(payload)
    return subscribers.size
  }

  get subscriptionCount (): number {
    return this.#count
  }

  get povCount (): number {
    return this.#byPov.size
  }
}
