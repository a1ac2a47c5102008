/**
 * The instance's presence (the `presence` option): one `PovPresence` per PoV this instance watches, from the first
 * subscription of the PoV to the last (so that other instances' members, which the broker reports from `watch` on,
 * are kept), and the way in and out for other instances (`PresenceSink` in, `PresenceRelay` out). With the
 * in-process broker there is no relay: this instance holds every member.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MemberState, PresenceRelay, PresenceSink } from '../broker.js'
import { povIdArgument } from '../api-arguments.js'
import { resolveMemberInfo, type MemberInfo } from './member-info.js'
import type { PovRealtimeUser, ResolvedPresenceOptions } from '../options.js'
import { PovPresence } from './pov-presence.js'
import type { PresenceReceiver } from './presence-receiver.js'
import type { Member } from '../../types/messages.js'

export class PresenceFeature {
  readonly #options: ResolvedPresenceOptions
  readonly #relay: PresenceRelay | undefined
  readonly #log: FastifyBaseLogger
  readonly #povs = new Map<string, PovPresence>()
  /** The PoVs each socket is a member on (for its status changes). */
  readonly #povsOf = new Map<PresenceReceiver, Set<string>>()
  /** What the broker calls with other instances' presence. */
  readonly sink: PresenceSink = {
    member: (povId, origin, userId, state) => this.#povs.get(povId)?.remoteMember(origin, userId, state),
    typing: (povId, origin, userId, typing) => this.#povs.get(povId)?.remoteTyping(origin, userId, typing)
  }

  readonly #outlet = {
    announce: (povId: string, userId: string, state: MemberState | null) => {
      this.#toRelay('announce', povId, () => this.#relay?.announce(povId, userId, state))
    },
    announceTyping: (povId: string, userId: string, typing: boolean) => {
      this.#toRelay('typing', povId, () => this.#relay?.typing(povId, userId, typing))
    }
  }

  constructor (options: ResolvedPresenceOptions, relay: PresenceRelay | undefined, log: FastifyBaseLogger) {
    this.#options = options
    this.#relay = relay
    this.#log = log
  }

  /** Members on this instance's watched PoVs now (this instance's and other instances'). */
  get memberCount (): number {
    let count = 0
    for (const pov of this.#povs.values()) count += pov.size
    return count
  }

  /** This instance's first subscription of `povId`: call before the broker's `watch`. */
  watch (povId: string): void {
    if (!this.#povs.has(povId)) this.#povs.set(povId, new PovPresence(povId, this.#options.typingTimeout, this.#outlet))
  }

  /** This instance's last subscription of `povId` has gone: its presence, other instances' included, is dropped. */
  unwatch (povId: string): void {
    this.#povs.get(povId)?.close()
    this.#povs.delete(povId)
  }

  /** A socket's `info`, computed once per socket at its first subscribe. Never rejects. */
  memberInfo (user: PovRealtimeUser): Promise<MemberInfo> {
    return resolveMemberInfo(this.#options, user, this.#log)
  }

  /** Right after `subscribed`: the socket joins the PoV's members (once) and is sent the snapshot. */
  join (receiver: PresenceReceiver, povId: string, info: MemberInfo): void {
    const pov = this.#povs.get(povId)
    if (!pov?.join(receiver, info)) return
    const povs = this.#povsOf.get(receiver)
    if (povs) povs.add(povId)
    else this.#povsOf.set(receiver, new Set([povId]))
  }

  /** The socket unsubscribed from `povId` or closed: it leaves, and its typing there ends. */
  leave (receiver: PresenceReceiver, povId: string): void {
    if (!this.#povs.get(povId)?.leave(receiver)) return
    const povs = this.#povsOf.get(receiver)!
    povs.delete(povId)
    if (povs.size === 0) this.#povsOf.delete(receiver)
  }

  /** The socket's status changed: it applies to every PoV it watches. */
  statusChanged (receiver: PresenceReceiver): void {
    for (const povId of this.#povsOf.get(receiver) ?? []) this.#povs.get(povId)!.statusChanged(receiver)
  }

  /** The socket sent `typing` on a PoV it subscribed to. */
  typing (receiver: PresenceReceiver, povId: string, typing: boolean): void {
    this.#povs.get(povId)?.typing(receiver, typing)
  }

  /**
   * `fastify.povRealtime.presence(povId)`: this instance's view when it watches the PoV (other instances' members
   * included), merged with what the relay lists (which also covers a PoV this instance does not watch).
   */
  async members (povId: string): Promise<Member[]> {
    povIdArgument(povId)
    const members = this.#povs.get(povId)?.members() ?? []
    if (!this.#relay) return members
    const known = new Set(members.map((member) => member.userId))
    const others = new Map<string, Member>()
    for (const { userId, state } of await this.#relay.members(povId)) {
      if (known.has(userId)) continue
      const other = others.get(userId)
      if (other) {
        if (state.status === 'active') other.status = 'active'
      } else {
        others.set(userId, { userId, status: state.status, info: structuredClone(state.info) })
      }
    }
    return [...members, ...others.values()]
  }

  /** A relay fault must not reach the socket whose message (or close) caused the announcement. */
  #toRelay (call: 'announce' | 'typing', povId: string, announce: () => void): void {
    try {
      announce()
    } catch (err) {
      this.#log.warn({ err, call, povId }, 'pov-realtime: the broker\'s presence relay failed to pass on a change')
    }
  }
}
