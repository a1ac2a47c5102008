/**
 * Presence on one PoV this instance watches: its members (this instance's sockets, grouped by user, and what other
 * instances report), the subscribers that receive presence, the coalesced `presence_diff`, and typing.
 *
 * A member is a user. This instance's state of a user = over its sockets of that user here: `active` if any is, and
 * the `info` of the earliest of them. The PoV's view of a user = this instance's state and every other instance's,
 * `active` if any is (info: this instance's, else the first reported). The view changes are not sent at once: the
 * users they touch are noted, and once per window (`PRESENCE_DIFF_WINDOW_MS`) each subscriber gets one diff between
 * what it was last shown and the view now, about those users only. A subscriber shown a snapshot inside the window
 * diffs against that snapshot (so it never hears of its own join); the others against the view of the last flush.
 */
import type { MemberState } from '../broker.js'
import { PRESENCE_DIFF_WINDOW_MS, PRESENCE_HEAL_DELAY_MS } from '../constants.js'
import type { MemberInfo } from './member-info.js'
import type { PresenceReceiver } from './presence-receiver.js'
import type { Member, MemberStatus, TypingEvent } from '../../types/messages.js'
import { TypingIndicators } from './typing-indicators.js'

/** What a PoV's presence tells the rest of the instance. */
export interface PresenceOutlet {
  /** This instance's state of `userId` changed (`null`: none of its sockets is on the PoV any more). */
  announce (povId: string, userId: string, state: MemberState | null): void
  /** This instance's `userId` started or stopped typing. */
  announceTyping (povId: string, userId: string, typing: boolean): void
}

/** One member as the view holds it: its JSON text (what presence messages carry, and how two states are compared). */
interface ViewEntry {
  readonly json: string
}

/** This instance's state of a user: `info` stays checked and serialized. */
interface LocalState {
  readonly status: MemberStatus
  readonly info: MemberInfo
}

/** One subscriber of the PoV (a socket that got the snapshot). */
interface Watcher {
  readonly info: MemberInfo
  /** Set when the socket was shown a snapshot since the last flush: the change number it saw. */
  snapshotAt: number | undefined
  /** A presence message to it was dropped: its next one is a full snapshot. */
  stale: boolean
}

/** A user touched since the last flush: their entry then, and their entries since, by change number. */
interface PendingChange {
  readonly flushed: ViewEntry | null
  readonly log: Array<{ at: number, entry: ViewEntry | null }>
}

export class PovPresence {
  readonly povId: string
  readonly #outlet: PresenceOutlet
  readonly #local = new Map<string, Set<PresenceReceiver>>()
  readonly #localStates = new Map<string, LocalState>()
  readonly #remote = new Map<string, Map<string, MemberState>>()
  readonly #view = new Map<string, ViewEntry>()
  readonly #watchers = new Map<PresenceReceiver, Watcher>()
  readonly #pending = new Map<string, PendingChange>()
  readonly #typing: TypingIndicators
  /** Counts view changes and snapshots, so that a snapshot knows which changes it already showed. */
  #changeNumber = 0
  /** The change number of the last snapshot of this window (-1: none). */
  #lastSnapshotAt = -1
  #flushTimer: NodeJS.Timeout | undefined
  #flushDue = 0

  constructor (povId: string, typingTimeout: number, outlet: PresenceOutlet) {
    this.povId = povId
    this.#outlet = outlet
    this.#typing = new TypingIndicators(typingTimeout, {
      changed: (userId, typing) => this.#sendTyping(userId, typing),
      announce: (userId, typing) => outlet.announceTyping(povId, userId, typing)
    })
  }

  /** Members in the view now. */
  get size (): number {
    return this.#view.size
  }

  /** The view now, as fresh objects. */
  members (): Member[] {
    return [...this.#view.values()].map((entry) => JSON.parse(entry.json) as Member)
  }

  // ---- this instance's sockets ------------------------------------------------------------

  /**
   * The socket subscribed (or subscribed again): it joins, if it had not, and is sent the snapshot, then who is
   * typing. Returns whether it joined now.
   */
  join (receiver: PresenceReceiver, info: MemberInfo): boolean {
    let watcher = this.#watchers.get(receiver)
    const joined = watcher === undefined
    if (!watcher) {
      watcher = { info, snapshotAt: undefined, stale: false }
      this.#watchers.set(receiver, watcher)
      const sockets = this.#local.get(receiver.userId)
      if (sockets) sockets.add(receiver)
      else this.#local.set(receiver.userId, new Set([receiver]))
      this.#refreshLocal(receiver.userId)
    }
    this.#sendSnapshot(receiver, watcher)
    for (const typist of this.#typing.typists()) {
      if (typist !== receiver.userId) receiver.sendEphemeral(this.#typingPayload(typist, true))
    }
    return joined
  }

  /** The socket unsubscribed or closed. Returns whether it was a subscriber. */
  leave (receiver: PresenceReceiver): boolean {
    if (!this.#watchers.delete(receiver)) return false
    const { userId } = receiver
    this.#typing.socketLeft(receiver)
    const sockets = this.#local.get(userId)!
    sockets.delete(receiver)
    if (sockets.size === 0) this.#local.delete(userId)
    this.#refreshLocal(userId)
    return true
  }

  /** The socket's status changed. */
  statusChanged (receiver: PresenceReceiver): void {
    if (this.#watchers.has(receiver)) this.#refreshLocal(receiver.userId)
  }

  /** The socket sent `typing`. */
  typing (receiver: PresenceReceiver, typing: boolean): void {
    if (this.#watchers.has(receiver)) this.#typing.local(receiver, typing)
  }

  // ---- other instances --------------------------------------------------------------------

  remoteMember (origin: string, userId: string, state: MemberState | null): void {
    let origins = this.#remote.get(userId)
    if (state) {
      if (!origins) {
        origins = new Map()
        this.#remote.set(userId, origins)
      }
      origins.set(origin, state)
    } else {
      if (!origins?.delete(origin)) return
      if (origins.size === 0) this.#remote.delete(userId)
      this.#typing.originLeft(origin, userId)
    }
    this.#refreshMember(userId)
  }

  remoteTyping (origin: string, userId: string, typing: boolean): void {
    // Typing of a member the origin does not hold would never be ended by its leave: ignored.
    if (typing && !this.#remote.get(userId)?.has(origin)) return
    this.#typing.remote(origin, userId, typing)
  }

  /** The PoV is no longer watched: timers go; the state goes with this object. */
  close (): void {
    clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    this.#typing.clear()
  }

  // ---- the view ---------------------------------------------------------------------------

  /** Recomputes this instance's state of a user; announces it and updates the view when it changed. */
  #refreshLocal (userId: string): void {
    const next = this.#localStateOf(userId)
    const previous = this.#localStates.get(userId)
    if (next && previous && next.status === previous.status && next.info.json === previous.info.json) return
    if (next) this.#localStates.set(userId, next)
    else this.#localStates.delete(userId)
    this.#outlet.announce(this.povId, userId, next ? { status: next.status, info: next.info.value } : null)
    this.#refreshMember(userId)
  }

  #localStateOf (userId: string): LocalState | undefined {
    const sockets = this.#local.get(userId)
    if (!sockets) return undefined
    let status: MemberStatus = 'idle'
    let info: MemberInfo | undefined
    for (const receiver of sockets) {
      info ??= this.#watchers.get(receiver)!.info
      if (receiver.status === 'active') status = 'active'
    }
    return { status, info: info! }
  }

  /** Recomputes a user's view entry; notes the change for the next flush when it changed. */
  #refreshMember (userId: string): void {
    const next = this.#viewEntryOf(userId)
    const previous = this.#view.get(userId) ?? null
    if (next?.json === previous?.json) return
    if (next) this.#view.set(userId, next)
    else this.#view.delete(userId)
    const at = ++this.#changeNumber
    let pending = this.#pending.get(userId)
    if (!pending) {
      pending = { flushed: previous, log: [] }
      this.#pending.set(userId, pending)
    }
    const last = pending.log.at(-1)
    // No snapshot since the user's last change: nobody saw that entry, so it is overwritten (the log stays short).
    if (last && last.at > this.#lastSnapshotAt) {
      last.at = at
      last.entry = next
    } else {
      pending.log.push({ at, entry: next })
    }
    this.#schedule(PRESENCE_DIFF_WINDOW_MS)
  }

  #viewEntryOf (userId: string): ViewEntry | null {
    const local = this.#localStates.get(userId)
    const origins = this.#remote.get(userId)
    if (!local && !origins) return null
    let active = local?.status === 'active'
    let info = local?.info.value
    for (const state of origins?.values() ?? []) {
      if (state.status === 'active') active = true
      info ??= state.info
    }
    const member: Member = { userId, status: active ? 'active' : 'idle', info: info! }
    return { json: JSON.stringify(member) }
  }

  // ---- sending ----------------------------------------------------------------------------

  #sendSnapshot (receiver: PresenceReceiver, watcher: Watcher): void {
    const members = [...this.#view.values()].map((entry) => entry.json).join(',')
    const sent = receiver.sendEphemeral(Buffer.from(`{"type":"presence","povId":${JSON.stringify(this.povId)},"members":[${members}]}`))
    watcher.stale = !sent
    if (sent) {
      watcher.snapshotAt = this.#lastSnapshotAt = ++this.#changeNumber
    } else {
      this.#schedule(PRESENCE_HEAL_DELAY_MS)
    }
  }

  #schedule (delay: number): void {
    const due = Date.now() + delay
    if (this.#flushTimer) {
      if (this.#flushDue <= due) return
      clearTimeout(this.#flushTimer)
    }
    this.#flushDue = due
    this.#flushTimer = setTimeout(() => this.#flush(), delay).unref()
  }

  /** Sends each subscriber what changed since it was last shown the view; heals the stale ones with a snapshot. */
  #flush (): void {
    this.#flushTimer = undefined
    const changes = [...this.#pending]
    this.#pending.clear()
    this.#lastSnapshotAt = -1
    /** Diffs by the change number they start from (`-1`: the last flush), each built once. */
    const diffs = new Map<number, Buffer | null>()
    let stale = false
    for (const [receiver, watcher] of this.#watchers) {
      const since = watcher.snapshotAt ?? -1
      watcher.snapshotAt = undefined
      if (watcher.stale) {
        this.#sendSnapshot(receiver, watcher)
        watcher.snapshotAt = undefined
        stale ||= watcher.stale
        continue
      }
      if (changes.length === 0) continue
      let diff = diffs.get(since)
      if (diff === undefined) {
        diff = this.#diff(changes, since)
        diffs.set(since, diff)
      }
      if (diff !== null && !receiver.sendEphemeral(diff)) {
        watcher.stale = true
        stale = true
      }
    }
    if (stale) this.#schedule(PRESENCE_HEAL_DELAY_MS)
  }

  /** The diff from what was shown at change number `since` (`-1`: the last flush) to the view now; `null` if none. */
  #diff (changes: ReadonlyArray<[string, PendingChange]>, since: number): Buffer | null {
    const joins: string[] = []
    const leaves: string[] = []
    for (const [userId, { flushed, log }] of changes) {
      let shown = flushed
      for (let i = log.length - 1; i >= 0; i--) {
        if (log[i]!.at <= since) {
          shown = log[i]!.entry
          break
        }
      }
      const now = this.#view.get(userId)
      if (now?.json === shown?.json) continue
      if (now) joins.push(now.json)
      else leaves.push(userId)
    }
    if (joins.length === 0 && leaves.length === 0) return null
    return Buffer.from(`{"type":"presence_diff","povId":${JSON.stringify(this.povId)},"joins":[${joins.join(',')}],"leaves":${JSON.stringify(leaves)}}`)
  }

  #typingPayload (userId: string, typing: boolean): Buffer {
    const event: TypingEvent = { type: 'typing', povId: this.povId, userId, typing }
    return Buffer.from(JSON.stringify(event))
  }

  /** To the PoV's other members' sockets, never to the typist's own. */
  #sendTyping (userId: string, typing: boolean): void {
    const payload = this.#typingPayload(userId, typing)
    for (const receiver of this.#watchers.keys()) {
      if (receiver.userId !== userId) receiver.sendEphemeral(payload)
    }
  }
}
