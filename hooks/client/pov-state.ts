/**
 * Everything the client holds about one PoV: its activities, presence and read receipts, the user's own typing on it,
 * and what the current connection has shown about it (whether it is subscribed, and which features the server has on).
 */
import { ActivityList } from './activity-list.js'
import { PresenceStore } from './presence/presence-store.js'
import { PovReadReceipts } from './read-receipts/pov-read-receipts.js'
import type { Timers } from './connection/timers.js'
import type { TypingSender } from './presence/typing-sender.js'

export interface PovStateOptions {
  /** Activities kept. */
  capacity: number
  timers: Timers
  /** ms after which another member's typing lapses without their `typing: false`. */
  typingExpiry: number
  /** Announces a change: runs `flush` at the end of the current batch. */
  schedule: (flush: () => void) => void
}

export class PovState {
  readonly activities: ActivityList
  readonly presence: PresenceStore
  readonly reads: PovReadReceipts
  /** The server confirmed the subscription on the current connection: live activities count as unread. */
  subscribed = false
  /** That confirmation carried `readCursor`: read receipts are on, `read` and `reads` may be sent. */
  readReceipts = false
  /** A presence snapshot arrived on the current connection: presence is on and the PoV subscribed, `typing` may be sent. */
  presenceOn = false
  /** The user's own typing on this PoV, while it lasts. */
  typing: TypingSender | undefined

  constructor (options: PovStateOptions) {
    this.activities = new ActivityList({ capacity: options.capacity, timers: options.timers, schedule: options.schedule })
    this.presence = new PresenceStore({ timers: options.timers, typingExpiry: options.typingExpiry, schedule: options.schedule })
    this.reads = new PovReadReceipts(this.activities, options.schedule)
  }

  /** Components reading this PoV. */
  get listenerCount (): number {
    return this.activities.listenerCount + this.presence.listenerCount + this.reads.listenerCount
  }

  /** The connection dropped: nothing is subscribed any more, and the server has forgotten who was typing. */
  connectionLost (): void {
    this.subscribed = false
    this.readReceipts = false
    this.presenceOn = false
    this.presence.clearTyping()
    this.typing?.forget()
    this.typing = undefined
  }

  /**
   * The server revoked the PoV: nothing of it is subscribed any more, and its members, who the user may no longer
   * see, go. Its activities stay for the app to show or hide.
   */
  revoked (): void {
    this.connectionLost()
    this.presence.clear()
  }

  /** Forgets everything (the session ended). */
  clear (): void {
    this.connectionLost()
    this.activities.clear()
    this.presence.clear()
    this.reads.clear()
  }

  /** Stops every timer; the state is not used again. */
  dispose (): void {
    this.typing?.forget()
    this.typing = undefined
    this.activities.dispose()
    this.presence.dispose()
  }
}
