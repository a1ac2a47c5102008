/**
 * Which PoVs the components watch, how many of them watch each, and the last cursor seen for each.
 *
 * Counting makes two components on one PoV one subscription. A PoV whose count drops to zero is only "leaving"
 * until `settle()`: the client settles on the next microtask, so React StrictMode's unmount/remount (which happens
 * inside one commit) neither unsubscribes nor loses the cursor.
 *
 * A PoV the server revoked stays watched (its components still show it, as revoked) but is not subscribed again, not
 * even after a reconnect, until the app asks for it anew: one more watcher (a component mounting, a new `watch`).
 */
import type { SubscribeMessage } from '../../types/messages.js'

interface Watch {
  count: number
  cursor: string | undefined
  /** The server has confirmed a subscription of this PoV on some connection. */
  confirmed: boolean
  /**
   * Resubscribed after a drop with no cursor to resume from (no activity seen yet): whatever was published while
   * the client was away cannot be recovered, so the confirmation must be treated as `recovered: false`.
   */
  blind: boolean
  /** The server revoked it: not subscribed again until a new watcher comes. */
  revoked: boolean
  /** The server refused its subscription (`FORBIDDEN`): a new watcher asks again (so does a reconnect). */
  refused: boolean
}

export class WatchRegistry {
  readonly #watches = new Map<string, Watch>()

  /**
   * Adds a watcher of `povId`; true when the PoV was not subscribed yet, or was revoked or refused (a `subscribe` must
   * be sent: a new watcher is the app asking for it again).
   */
  add (povId: string): boolean {
    const watch = this.#watches.get(povId)
    if (watch) {
      watch.count++
      if (!watch.revoked && !watch.refused) return false
      watch.revoked = false
      watch.refused = false
      return true
    }
    this.#watches.set(povId, { count: 1, cursor: undefined, confirmed: false, blind: false, revoked: false, refused: false })
    return true
  }

  /** The server refused to subscribe `povId`. */
  refuse (povId: string): void {
    const watch = this.#watches.get(povId)
    if (watch) watch.refused = true
  }

  /** The server revoked `povId`: it stays watched, but is not subscribed again by itself. */
  revoke (povId: string): void {
    const watch = this.#watches.get(povId)
    if (watch) watch.revoked = true
  }

  /** Whether the server revoked `povId` (and no new watcher has come since). */
  isRevoked (povId: string): boolean {
    return this.#watches.get(povId)?.revoked === true
  }

  /** Removes a watcher; true when it was the last one (the PoV is now leaving). Unknown PoVs: false. */
  remove (povId: string): boolean {
    const watch = this.#watches.get(povId)
    if (!watch || watch.count === 0) return false
    watch.count--
    return watch.count === 0
  }

  /** Forgets `povId` if it is still leaving; true when it did (an `unsubscribe` must be sent). */
  settle (povId: string): boolean {
    if (this.#watches.get(povId)?.count !== 0) return false
    this.#watches.delete(povId)
    return true
  }

  /** True while `povId` is watched or leaving (still subscribed at the server). */
  has (povId: string): boolean {
    return this.#watches.has(povId)
  }

  /** True while at least one watcher watches `povId`. */
  isWatched (povId: string): boolean {
    return (this.#watches.get(povId)?.count ?? 0) > 0
  }

  /** Records the cursor of an activity of `povId` (ignored for PoVs no longer known). */
  advance (povId: string, cursor: string): void {
    const watch = this.#watches.get(povId)
    if (watch) watch.cursor = cursor
  }

  /**
   * The server said `povId`'s feed had a gap it could not fill (`resync`): live delivery goes on after `cursor`, the
   * place to resume from now; `null` leaves none (what the client saw belongs to a history that is gone).
   */
  resynced (povId: string, cursor: string | null): void {
    const watch = this.#watches.get(povId)
    if (watch) watch.cursor = cursor ?? undefined
  }

  /** The last cursor seen for `povId`. */
  cursorOf (povId: string): string | undefined {
    return this.#watches.get(povId)?.cursor
  }

  /** Forgets every cursor (another user signed in: what the last one saw is no place to resume from). */
  forgetCursors (): void {
    for (const watch of this.#watches.values()) watch.cursor = undefined
  }

  /** The `subscribe` messages that restore every watched PoV, each resuming after its last cursor. */
  subscriptions (): SubscribeMessage[] {
    const messages: SubscribeMessage[] = []
    for (const [povId, watch] of this.#watches) {
      if (watch.count === 0 || watch.revoked) continue
      watch.blind = watch.cursor === undefined && watch.confirmed
      messages.push(watch.cursor === undefined ? { type: 'subscribe', povId } : { type: 'subscribe', povId, since: watch.cursor })
    }
    return messages
  }

  /**
   * The server confirmed the subscription of `povId`; true when the client may have missed activities meanwhile
   * (a blind resubscription, see {@link Watch.blind}).
   */
  confirm (povId: string): boolean {
    const watch = this.#watches.get(povId)
    if (!watch) return false
    const missedUnknown = watch.blind
    watch.confirmed = true
    watch.blind = false
    watch.refused = false
    return missedUnknown
  }

  clear (): void {
    this.#watches.clear()
  }
}
