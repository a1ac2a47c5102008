/**
 * One PoV's presence as the components see it: the members (from the `presence` snapshot, then `presence_diff`s) and
 * who of them is typing (from `typing` events). Both are published as immutable, sorted snapshots through the batch
 * scheduler, separately, so that a typing indicator does not re-render a member list and the other way round.
 */
import type { Member } from '../../../types/messages.js'
import { byCodeUnits } from '../support/code-unit-order.js'
import { PublishedValue } from '../support/published-value.js'
import type { Timers } from '../connection/timers.js'

export interface PresenceStoreOptions {
  timers: Timers
  /** ms after which a member's typing lapses when their `typing: false` never arrives. */
  typingExpiry: number
  /** Announces a change: runs `flush` at the end of the current batch. */
  schedule: (flush: () => void) => void
}

/** The members of a PoV nobody has reported on. */
export const NO_MEMBERS: readonly Member[] = Object.freeze([])
/** Nobody typing. */
export const NOBODY_TYPING: readonly string[] = Object.freeze([])

export class PresenceStore {
  readonly #options: PresenceStoreOptions
  readonly #members = new Map<string, Member>()
  /** Typing members and the timer that lets each lapse. */
  readonly #typing = new Map<string, unknown>()
  /** The members, sorted by `userId`. */
  readonly members: PublishedValue<readonly Member[]>
  /** The `userId`s of the members typing, sorted. */
  readonly typing: PublishedValue<readonly string[]>

  constructor (options: PresenceStoreOptions) {
    this.#options = options
    this.members = new PublishedValue(NO_MEMBERS, options.schedule)
    this.typing = new PublishedValue(NOBODY_TYPING, options.schedule)
  }

  /** Replaces the members with a snapshot (each (re)subscription sends one). */
  replace (members: readonly Member[]): void {
    this.#members.clear()
    for (const member of members) this.#members.set(member.userId, member)
    for (const userId of [...this.#typing.keys()]) if (!this.#members.has(userId)) this.#stopTyping(userId)
    this.#membersChanged()
    this.#typingChanged()
  }

  /**
   * Applies a diff: `leaves` first, then `joins` (a member whose status changed comes again in `joins`), so a user who
   * appears in both is present afterwards. A member who leaves stops typing.
   */
  apply (joins: readonly Member[], leaves: readonly string[]): void {
    let typingChanged = false
    for (const userId of leaves) {
      this.#members.delete(userId)
      typingChanged = this.#stopTyping(userId) || typingChanged
    }
    for (const member of joins) this.#members.set(member.userId, member)
    this.#membersChanged()
    if (typingChanged) this.#typingChanged()
  }

  /**
   * Records that `userId` started or stopped typing. A start lapses by itself after `typingExpiry` ms without a new
   * `typing: true`, in case the server's `typing: false` was lost (it is the first thing dropped for a slow reader).
   */
  setTyping (userId: string, typing: boolean): void {
    if (!typing) {
      if (this.#stopTyping(userId)) this.#typingChanged()
      return
    }
    const { timers, typingExpiry } = this.#options
    const known = this.#typing.has(userId)
    if (known) timers.clearTimeout(this.#typing.get(userId))
    this.#typing.set(userId, timers.setTimeout(() => this.setTyping(userId, false), typingExpiry))
    if (!known) this.#typingChanged()
  }

  /** Forgets who is typing (the connection dropped: the server has forgotten too). */
  clearTyping (): void {
    if (this.#typing.size === 0) return
    for (const userId of [...this.#typing.keys()]) this.#stopTyping(userId)
    this.#typingChanged()
  }

  /** Forgets everything. */
  clear (): void {
    this.clearTyping()
    if (this.#members.size === 0) return
    this.#members.clear()
    this.#membersChanged()
  }

  get listenerCount (): number {
    return this.members.listenerCount + this.typing.listenerCount
  }

  /** Stops the typing timers; the store is not used again. */
  dispose (): void {
    for (const timer of this.#typing.values()) this.#options.timers.clearTimeout(timer)
    this.#typing.clear()
  }

  #stopTyping (userId: string): boolean {
    if (!this.#typing.has(userId)) return false
    this.#options.timers.clearTimeout(this.#typing.get(userId))
    this.#typing.delete(userId)
    return true
  }

  #membersChanged (): void {
    const sorted = [...this.#members.values()].sort((a, b) => byCodeUnits(a.userId, b.userId))
    this.members.set(sorted.length === 0 ? NO_MEMBERS : Object.freeze(sorted))
  }

  #typingChanged (): void {
    const sorted = [...this.#typing.keys()].sort(byCodeUnits)
    this.typing.set(sorted.length === 0 ? NOBODY_TYPING : Object.freeze(sorted))
  }
}
