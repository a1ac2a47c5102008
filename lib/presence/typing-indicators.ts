/**
 * Who is typing on one PoV. Typing is per user: a user types when any of their sources does, a source being this
 * instance's sockets of the user (together) or another instance that reported them typing. Only the user's changes
 * (starts and stops) are passed on; repeats are absorbed.
 *
 * This instance's typing of a user stops `typingTimeout` ms after their last `typing: true`, at a client's
 * `typing: false`, and when the last socket that reported it leaves the PoV. While the user keeps typing, the start
 * is announced again to the other instances at most every `typingTimeout / 2` ms: that refresh keeps their safety
 * timeout (twice `typingTimeout`) from firing, and that timeout ends another instance's typing when no `false`
 * comes (the instance died). The gap between two refreshes stays under 1.5 × `typingTimeout`, hence the factor 2;
 * it assumes every instance has the same `typingTimeout`.
 */
import type { PresenceReceiver } from './presence-receiver.js'

/** What the indicators tell the PoV. */
export interface TypingListener {
  /** The user as a whole started or stopped typing: tell the PoV's other members' sockets. */
  changed (userId: string, typing: boolean): void
  /** This instance's typing of the user started (or is refreshed) or stopped: tell the other instances. */
  announce (userId: string, typing: boolean): void
}

/** This instance's sockets of one user that reported typing, and its timeout. */
interface LocalTyping {
  readonly sockets: Set<PresenceReceiver>
  readonly timer: NodeJS.Timeout
  announcedAt: number
}

interface UserTyping {
  local: LocalTyping | undefined
  /** Other instances typing as this user, each with its safety timeout. */
  readonly remote: Map<string, NodeJS.Timeout>
}

const REMOTE_SAFETY_FACTOR = 2

export class TypingIndicators {
  readonly #users = new Map<string, UserTyping>()
  readonly #timeout: number
  readonly #listener: TypingListener

  constructor (typingTimeout: number, listener: TypingListener) {
    this.#timeout = typingTimeout
    this.#listener = listener
  }

  /** Users typing now. */
  typists (): IterableIterator<string> {
    return this.#users.keys()
  }

  /** A socket of this instance sent `typing`. */
  local (receiver: PresenceReceiver, typing: boolean): void {
    const { userId } = receiver
    const user = this.#users.get(userId)
    if (!typing) {
      if (user?.local) this.#stopLocal(userId, user)
      return
    }
    const local = user?.local
    if (local) {
      local.sockets.add(receiver)
      local.timer.refresh()
      const now = Date.now()
      if (now - local.announcedAt >= this.#timeout / 2) {
        local.announcedAt = now
        this.#listener.announce(userId, true)
      }
      return
    }
    const entry = user ?? this.#add(userId)
    const timer = setTimeout(() => this.#stopLocal(userId, entry), this.#timeout).unref()
    entry.local = { sockets: new Set([receiver]), timer, announcedAt: Date.now() }
    this.#listener.announce(userId, true)
    if (entry.remote.size === 0) this.#listener.changed(userId, true)
  }

  /** A socket of this instance left the PoV: its typing ends (the user's, if it was the last such socket). */
  socketLeft (receiver: PresenceReceiver): void {
    const user = this.#users.get(receiver.userId)
    if (!user?.local?.sockets.delete(receiver)) return
    if (user.local.sockets.size === 0) this.#stopLocal(receiver.userId, user)
  }

  /** Another instance reported `userId` typing or not. */
  remote (origin: string, userId: string, typing: boolean): void {
    const user = this.#users.get(userId)
    const timer = user?.remote.get(origin)
    if (!typing) {
      if (timer) this.#stopRemote(userId, user!, origin)
      return
    }
    if (timer) {
      timer.refresh()
      return
    }
    const entry = user ?? this.#add(userId)
    const wasTyping = entry.local !== undefined || entry.remote.size > 0
    entry.remote.set(origin, setTimeout(() => this.#stopRemote(userId, entry, origin), REMOTE_SAFETY_FACTOR * this.#timeout).unref())
    if (!wasTyping) this.#listener.changed(userId, true)
  }

  /** Instance `origin` no longer holds `userId` on the PoV: its typing ends. */
  originLeft (origin: string, userId: string): void {
    const user = this.#users.get(userId)
    if (user?.remote.has(origin)) this.#stopRemote(userId, user, origin)
  }

  /** The PoV is no longer watched: every timer goes, nothing is sent. */
  clear (): void {
    for (const user of this.#users.values()) {
      clearTimeout(user.local?.timer)
      for (const timer of user.remote.values()) clearTimeout(timer)
    }
    this.#users.clear()
  }

  #add (userId: string): UserTyping {
    const user: UserTyping = { local: undefined, remote: new Map() }
    this.#users.set(userId, user)
    return user
  }

  #stopLocal (userId: string, user: UserTyping): void {
    clearTimeout(user.local?.timer)
    user.local = undefined
    this.#listener.announce(userId, false)
    this.#ended(userId, user)
  }

  #stopRemote (userId: string, user: UserTyping, origin: string): void {
    clearTimeout(user.remote.get(origin))
    user.remote.delete(origin)
    this.#ended(userId, user)
  }

  /** One source stopped: the user stops when it was the last. */
  #ended (userId: string, user: UserTyping): void {
    if (user.local || user.remote.size > 0) return
    this.#users.delete(userId)
    this.#listener.changed(userId, false)
  }
}
