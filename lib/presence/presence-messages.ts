/**
 * One socket's side of presence (the `presence` option): its `status` and `typing` messages, its activity status and
 * member info, and its joins and leaves of the PoVs it subscribes to. It is the `PresenceReceiver` the instance's
 * presence knows the socket by, and it sees the socket's session only through `PresenceSession`.
 *
 * A status change fans out to every member of every PoV the socket watches, so changes have a limit of their own
 * (`STATUS_CHANGE_LIMIT`): past it, the socket's status is held back and its newest is applied when the window ends,
 * so the members see it late but never wrong.
 */
import { ErrorCode } from '../../types/wire-constants.js'
import { STATUS_CHANGE_LIMIT } from '../constants.js'
import type { SocketLimitTrips } from '../socket/socket-limit-trips.js'
import type { MemberStatus, StatusMessage, TypingMessage } from '../../types/messages.js'
import type { PovRealtimeUser } from '../options.js'
import { NO_INFO, type MemberInfo } from './member-info.js'
import type { PresenceFeature } from './presence-feature.js'
import type { PresenceReceiver } from './presence-receiver.js'

/** What presence needs of a socket's session. */
export interface PresenceSession {
  readonly userId: string
  /** Whether the socket's subscription to `povId` was authorized (and not ended). */
  watches (povId: string): boolean
  /** Answers the client with an `error` (counted as a rejection). */
  sendError (code: ErrorCode, message: string, povId?: string): void
  /** Writes one presence or typing message unless the socket is backed up; returns whether it was written. */
  sendEphemeral (payload: Buffer): boolean
  /** The socket's fairness limits. */
  readonly limits: SocketLimitTrips
}

export class PresenceMessages implements PresenceReceiver {
  readonly userId: string
  readonly #feature: PresenceFeature
  readonly #session: PresenceSession
  #status: MemberStatus = 'active'
  /** The status the socket last asked for (it differs from `#status` while a change is held back). */
  #wanted: MemberStatus = 'active'
  /** Start of the current window of `STATUS_CHANGE_LIMIT`, and the changes applied in it. */
  #windowStart = -Infinity
  #changes = 0
  /** Set while a change is held back: applies the newest wanted status when the window ends. */
  #heldBack: NodeJS.Timeout | undefined
  /** The socket's public info, computed at its first subscribe. */
  #info: MemberInfo | undefined

  constructor (feature: PresenceFeature, session: PresenceSession) {
    this.userId = session.userId // a socket's user never changes (an in-band token for another user is refused)
    this.#feature = feature
    this.#session = session
  }

  get status (): MemberStatus {
    return this.#status
  }

  /** Whether the socket's info is known (computed once: see `resolveInfo`). */
  get hasInfo (): boolean {
    return this.#info !== undefined
  }

  /**
   * Computes the socket's info, before its first subscription is watched: joining, right after `subscribed`, must not
   * wait on anything. Never rejects.
   */
  async resolveInfo (user: PovRealtimeUser): Promise<void> {
    this.#info = await this.#feature.memberInfo(user)
  }

  sendEphemeral (payload: Buffer): boolean {
    return this.#session.sendEphemeral(payload)
  }

  /** Right after `subscribed` (and the replay): the socket joins the PoV's members, if new, and gets the snapshot. */
  join (povId: string): void {
    this.#feature.join(this, povId, this.#info ?? NO_INFO)
  }

  /** The socket unsubscribed from `povId` or closed: it leaves, and its typing there ends. */
  leave (povId: string): void {
    this.#feature.leave(this, povId)
  }

  /** A `status` or `typing` message of the socket. */
  received (message: StatusMessage | TypingMessage): void {
    switch (message.type) {
      case 'status': return this.#onStatus(message)
      case 'typing': return this.#onTyping(message)
    }
  }

  /** The socket closed: a held-back change is dropped with it. */
  close (): void {
    clearTimeout(this.#heldBack)
    this.#heldBack = undefined
  }

  #onStatus ({ status }: StatusMessage): void {
    this.#wanted = status
    if (this.#heldBack === undefined) this.#applyWanted()
  }

  #applyWanted (): void {
    if (this.#wanted === this.#status) return
    const now = Date.now()
    if (now - this.#windowStart >= STATUS_CHANGE_LIMIT.timeWindow) {
      this.#windowStart = now
      this.#changes = 0
    }
    if (this.#changes < STATUS_CHANGE_LIMIT.max) {
      this.#changes++
      this.#status = this.#wanted
      this.#feature.statusChanged(this)
      return
    }
    this.#session.limits.trip('statusChanges', { max: STATUS_CHANGE_LIMIT.max, timeWindow: STATUS_CHANGE_LIMIT.timeWindow })
    this.#heldBack = setTimeout(() => {
      this.#heldBack = undefined
      this.#applyWanted()
    }, this.#windowStart + STATUS_CHANGE_LIMIT.timeWindow - now)
  }

  /** `typing` is only for a PoV this socket watches, so nobody learns of a PoV `authorizeSubscription` refuses. */
  #onTyping ({ povId, typing }: TypingMessage): void {
    if (!this.#session.watches(povId)) {
      return this.#session.sendError(ErrorCode.INVALID_MESSAGE, 'typing needs a subscription to this PoV; subscribe first', povId)
    }
    this.#feature.typing(this, povId, typing)
  }
}
