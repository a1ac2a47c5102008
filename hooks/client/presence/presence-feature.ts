/**
 * Presence and typing on the watched PoVs: the server's `presence`, `presence_diff` and `typing` messages go into each
 * PoV's presence store (`presence-store.ts`), and the user's own typing goes out through a typing sender per PoV
 * (`typing-sender.ts`), only on a PoV whose presence snapshot came on this connection, so that a server with presence
 * off never draws a `NOT_ENABLED`. This page's own status is `status-reporter.ts`'s, told here that presence is on.
 */
import type { Member, PresenceDiffMessage, PresenceMessage, TypingEvent, TypingMessage } from '../../../types/messages.js'
import type { PovRegistry } from '../pov-registry.js'
import type { StatusReporter } from './status-reporter.js'
import type { Timers } from '../connection/timers.js'
import { TypingSender } from './typing-sender.js'

/** The server messages this part owns. */
export type PresenceServerMessage = PresenceMessage | PresenceDiffMessage | TypingEvent

export interface PresenceFeatureOptions {
  povs: PovRegistry
  status: StatusReporter
  /** Puts a `typing` on the wire; false when it could not (not connected). */
  send: (message: TypingMessage) => boolean
  /** The session's user, if known: their typing in another tab is not shown. */
  userId: () => string | undefined
  /** ms between two `typing: true` while the user types on. */
  typingInterval: number
  timers: Timers
}

export class PresenceFeature {
  readonly #options: PresenceFeatureOptions

  constructor (options: PresenceFeatureOptions) {
    this.#options = options
  }

  /** The user is typing on `povId` or stopped; see `RealtimeClient.setTyping`. */
  setTyping (povId: string, typing: boolean): void {
    const pov = this.#options.povs.get(povId)
    if (!pov) return
    if (!typing) return pov.typing?.stop()
    pov.typing ??= new TypingSender({
      interval: this.#options.typingInterval,
      timers: this.#options.timers,
      send: (value) => pov.presenceOn && this.#options.send({ type: 'typing', povId, typing: value }),
      stopped: () => { pov.typing = undefined }
    })
    pov.typing.start()
  }

  /** Applies a server message about who is on a PoV or typing there. */
  received (message: PresenceServerMessage): void {
    switch (message.type) {
      case 'presence': return this.#onPresence(message)
      case 'presence_diff': return this.#onPresenceDiff(message)
      case 'typing': return this.#onTyping(message)
    }
  }

  #onPresence (message: PresenceMessage): void {
    const pov = this.#options.povs.subscribed(message.povId)
    if (!pov || !Array.isArray(message.members)) return
    pov.presenceOn = true
    pov.presence.replace(message.members.filter(isMember))
    this.#options.status.presenceSeen()
  }

  #onPresenceDiff (message: PresenceDiffMessage): void {
    const pov = this.#options.povs.subscribed(message.povId)
    if (!pov) return
    const joins = Array.isArray(message.joins) ? message.joins.filter(isMember) : []
    const leaves = Array.isArray(message.leaves) ? message.leaves.filter((userId) => typeof userId === 'string') : []
    pov.presence.apply(joins, leaves)
    this.#options.status.presenceSeen()
  }

  #onTyping (message: TypingEvent): void {
    const pov = this.#options.povs.subscribed(message.povId)
    // The server never echoes the typist; another tab of the same user is no one to show either.
    if (!pov || typeof message.userId !== 'string' || message.userId === this.#options.userId()) return
    pov.presence.setTyping(message.userId, message.typing === true)
  }
}

function isMember (value: unknown): value is Member {
  const member = value as Member | null
  return typeof member?.userId === 'string' && (member.status === 'active' || member.status === 'idle') &&
    typeof member.info === 'object' && member.info !== null
}
