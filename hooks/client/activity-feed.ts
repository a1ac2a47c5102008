/**
 * The activity feeds of the watched PoVs: one `subscribe` per PoV however many components watch it (`watch-registry.ts`),
 * resuming after the last cursor seen, again after every reconnect; the activities that arrive, deduplicated, into each
 * PoV's store; the server's confirmation, refusal or revocation of each subscription; and the listeners told of each
 * new activity, of a gap a resume (or the server, in-band) could not fill (`resync`), and of a revocation (`revoked`).
 */
import type { Activity } from '../../types/activity.js'
import type {
  ActivityMessage, ErrorMessage, ResyncMessage, SubscribedMessage, SubscribeMessage, UnsubscribedMessage, UnsubscribeMessage
} from '../../types/messages.js'
import { ErrorCode } from '../../types/wire-constants.js'
import type { ReloadPersistence } from './persistence/reload-persistence.js'
import type { PovRegistry } from './pov-registry.js'
import type { PovState } from './pov-state.js'
import type { WatchRegistry } from './watch-registry.js'

/**
 * What a per-PoV listener hears: each new activity, `resync` when a gap could not be filled (a resume answered
 * `recovered: false`, or the server's in-band `resync` after the broker lost activities), and `revoked` when
 * the server ended the user's access to the PoV (it is not subscribed again until the app watches it anew).
 */
export type ActivityEvent =
  | { readonly type: 'activity', readonly povId: string, readonly activity: Activity, readonly cursor: string }
  | { readonly type: 'resync', readonly povId: string }
  | { readonly type: 'revoked', readonly povId: string }

/** What a revoked PoV's `error` reads (`usePovActivities`): a `FORBIDDEN` the server did not send as such. */
export const REVOKED_MESSAGE = 'access revoked'

/** A new activity, added to its PoV's store. */
export interface ActivityArrival {
  readonly povId: string
  readonly pov: PovState
  readonly activity: Activity
}

/** The server confirmed a subscription. */
export interface Confirmation {
  /** The PoV's state, if it is still watched (now subscribed on this connection). */
  readonly pov: PovState | undefined
  /** Activities may have been missed meanwhile: the listeners must be told (`resync`). */
  readonly resync: boolean
}

export interface ActivityFeedOptions {
  povs: PovRegistry
  watches: WatchRegistry
  /** Where a PoV watched afresh (no cursor given) looks for what a reload kept. */
  offline: ReloadPersistence
  /** Puts a `subscribe` or `unsubscribe` on the wire; false when it could not (not connected). */
  send: (message: SubscribeMessage | UnsubscribeMessage) => boolean
}

export class ActivityFeed {
  readonly #options: ActivityFeedOptions
  readonly #listeners = new Map<string, Set<(event: ActivityEvent) => void>>()

  constructor (options: ActivityFeedOptions) {
    this.#options = options
  }

  /** One more watcher of `povId`; the first subscribes it, resuming after `since` or what a reload kept. */
  watch (povId: string, since: string | undefined): void {
    const { povs, watches, offline, send } = this.#options
    povs.obtain(povId)
    if (!watches.add(povId)) return
    if (since !== undefined) watches.advance(povId, since)
    else offline.restore(povId)
    const cursor = watches.cursorOf(povId)
    // If the socket is down, the subscription goes out with all the others once it opens.
    send(cursor === undefined ? { type: 'subscribe', povId } : { type: 'subscribe', povId, since: cursor })
  }

  /** One fewer watcher of `povId`; after the last, it is unsubscribed (unless the server already ended it). */
  unwatch (povId: string): void {
    const { povs, watches, send } = this.#options
    if (!watches.remove(povId)) return
    // On the next microtask, so that an unmount followed by a remount in the same commit changes nothing.
    queueMicrotask(() => {
      const revoked = watches.isRevoked(povId)
      if (!watches.settle(povId)) return
      if (!revoked) send({ type: 'unsubscribe', povId })
      povs.releaseUnread(povId)
    })
  }

  /** True while at least one watcher watches `povId`. */
  isWatched (povId: string): boolean {
    return this.#options.watches.isWatched(povId)
  }

  /** A connection opened: every watched PoV is subscribed again, each resuming after its last cursor. */
  resubscribe (): void {
    for (const subscribe of this.#options.watches.subscriptions()) this.#options.send(subscribe)
  }

  /** An activity arrived: added to its watched PoV's store, unless it is not new. */
  receive (message: ActivityMessage): ActivityArrival | undefined {
    const activity = message.data as Activity | undefined
    const povId = activity?.povId
    if (typeof povId !== 'string' || typeof activity?.id !== 'string') return undefined
    const pov = this.#options.povs.subscribed(povId)
    if (!pov) return undefined
    this.#options.watches.advance(povId, message.cursor)
    return pov.activities.add(activity, message.cursor) ? { povId, pov, activity } : undefined
  }

  /** The server confirmed a subscription: the PoV's error goes, and it counts as subscribed on this connection. */
  confirm (message: SubscribedMessage): Confirmation {
    const { povs, watches } = this.#options
    const known = povs.get(message.povId)
    known?.activities.setError(null)
    const missedUnknown = watches.confirm(message.povId)
    const pov = known && watches.has(message.povId) ? known : undefined
    if (pov) pov.subscribed = true
    return { pov, resync: message.recovered === false || missedUnknown }
  }

  /**
   * The server's in-band `resync`: the PoV's live feed had a gap it could not fill; the subscription stays, and the
   * client resumes after `cursor` from now on. True when the PoV is subscribed here (the listeners are then to be
   * told, exactly as for `recovered: false`).
   */
  resynced ({ povId, cursor }: ResyncMessage): boolean {
    if (!this.#options.povs.subscribed(povId)) return false
    this.#options.watches.resynced(povId, cursor)
    return true
  }

  /**
   * The server refused something: a refused subscription shows on its PoV. A `FORBIDDEN` on a subscribed PoV (a
   * repeated `subscribe` that the server checked again and refused) means the server dropped the subscription.
   */
  refused (message: ErrorMessage): void {
    const pov = message.povId === undefined ? undefined : this.#options.povs.get(message.povId)
    if (message.code === ErrorCode.FORBIDDEN && message.povId !== undefined) {
      this.#options.watches.refuse(message.povId)
      if (pov?.subscribed) pov.revoked()
    }
    // A refused typing or read on a subscribed PoV (or a feature that is off) is no reason to show the feed as failed.
    if (pov && !pov.subscribed && message.code !== ErrorCode.NOT_ENABLED) pov.activities.setError(message)
  }

  /**
   * The server ended the subscription (`unsubscribed` with `reason: 'revoked'`): the PoV stays watched and shows the
   * revocation as its error, but is not subscribed again until the app watches it anew. True when it was watched (the
   * listeners are then to be told).
   */
  revoked ({ povId }: UnsubscribedMessage): boolean {
    const { watches } = this.#options
    if (!watches.isWatched(povId)) return false
    watches.revoke(povId)
    this.#showRevoked(povId)
    return true
  }

  /** The server closed the connection with 4003 (the user's access revoked): every watched PoV shows it. */
  revokedAll (): string[] {
    const revoked = [...this.#options.povs.ids()].filter((povId) => this.#options.watches.isWatched(povId))
    for (const povId of revoked) this.#showRevoked(povId)
    return revoked
  }

  #showRevoked (povId: string): void {
    const pov = this.#options.povs.get(povId)
    if (!pov) return
    pov.revoked()
    pov.activities.setError({ type: 'error', code: ErrorCode.FORBIDDEN, message: REVOKED_MESSAGE, povId })
  }

  /** Calls `listener` with each event of `povId`; see `RealtimeClient.onActivity`. */
  onActivity (povId: string, listener: (event: ActivityEvent) => void): () => void {
    let listeners = this.#listeners.get(povId)
    if (!listeners) this.#listeners.set(povId, listeners = new Set())
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0 && this.#listeners.get(povId) === listeners) this.#listeners.delete(povId)
    }
  }

  /** Tells `povId`'s listeners of `event`. */
  emit (povId: string, event: ActivityEvent): void {
    const listeners = this.#listeners.get(povId)
    if (!listeners) return
    for (const listener of [...listeners]) {
      try {
        listener(event)
      } catch (err) {
        // The app's callback failing must not stop the others, nor the client: report it without catching it.
        queueMicrotask(() => { throw err })
      }
    }
  }

  /** Forgets every cursor (another user signed in: what the last one saw is no place to resume from). */
  forgetCursors (): void {
    this.#options.watches.forgetCursors()
  }

  /** Forgets every watched PoV (the session ended). */
  forget (): void {
    this.#options.watches.clear()
  }
}
