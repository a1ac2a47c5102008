/**
 * The marks `markRead` made that the server has not been sent yet, by PoV (offline, or the PoV not subscribed yet):
 * each goes out once its PoV is subscribed with read receipts on, and is kept by `persist` meanwhile. One per PoV (a
 * newer mark replaces the older), at most `MAX_PERSISTED_POVS` (the oldest goes first).
 */
import { MAX_PERSISTED_POVS } from '../persistence/persisted-state.js'
import { setNewest } from '../support/set-newest.js'

export class PendingReads {
  readonly #marks = new Map<string, string>()

  /** The mark waiting for `povId`. */
  get (povId: string): string | undefined {
    return this.#marks.get(povId)
  }

  /** `cursor` waits to be sent for `povId`, replacing what waited. */
  queue (povId: string, cursor: string): void {
    setNewest(this.#marks, povId, cursor, MAX_PERSISTED_POVS)
  }

  /** A mark kept from before the reload waits again, unless one made since already does. */
  restore (povId: string, cursor: string): void {
    if (!this.#marks.has(povId)) this.#marks.set(povId, cursor)
  }

  /** `povId`'s mark went out. */
  sent (povId: string): void {
    this.#marks.delete(povId)
  }

  /** The server has this user's mark on `povId` at `cursor`: if that is the one waiting, it waits no more. */
  confirmed (povId: string, cursor: string): void {
    if (this.#marks.get(povId) === cursor) this.#marks.delete(povId)
  }

  clear (): void {
    this.#marks.clear()
  }
}
