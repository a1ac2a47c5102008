/**
 * One watched PoV's presence on one instance of the Redis broker: the other instances' members as this instance last
 * learned them, kept up to date from the PoV's channel, and every change handed to the plugin once, in order.
 *
 * Each change on the channel carries its position in the PoV's numbered changes. The mirror knows the position of
 * the last change it applied (or of the snapshot it started from), so a change at or before it is one the mirror
 * already holds and is dropped, the next one is applied, and anything else means changes were missed: the mirror
 * holds what arrives and asks its owner to read the hash again (`sync`). This is how a snapshot and the live changes
 * meet without a lost or stale update. The mirror does no I/O itself.
 */
import type { MemberState, PresenceSink } from '../broker.js'
import { encodeState, type ChangePosition, type PresenceChange, type PresenceSnapshot } from './presence-scripts.js'

/** Changes held while a sync runs; past that, they are dropped and the sync reads their outcome from the hash. */
const MAX_HELD = 10_000

/** How the owner decides, during a sync, what to make of an instance's members. */
export type OriginVerdict =
  /** Alive: the hash is the truth for it. */
  | 'alive'
  /** Gone: none of its members stay. */
  | 'dead'
  /** Its liveness is unknown for now (Redis lost its heartbeat): members it had stay until that is settled. */
  | 'unknown'

export class PresenceMirror {
  readonly #sink: PresenceSink
  readonly #self: string
  readonly #requestSync: () => void
  readonly #ownChangeLost: () => void
  /** `watch` calls not yet matched by `unwatch`. */
  refs = 1
  /** Set while the owner syncs this mirror with Redis; changes arriving meanwhile are held. */
  syncing = false
  /** Another sync was asked for while one was running. */
  syncRequested = false
  /** Instance → user → state (and its text, to tell a change from a repeat). */
  readonly #members = new Map<string, Map<string, { state: MemberState, text: string }>>()
  /** Position of the last change applied; undefined until the first sync. */
  #position: ChangePosition | undefined
  #held: PresenceChange[] = []
  #onSynced: Array<() => void> = []

  /**
   * @param requestSync asks the owner to read the hash again (it calls `sync`)
   * @param ownChangeLost the PoV's members of this instance were removed by another one (which took it for dead)
   */
  constructor (
    readonly povId: string,
    readonly channel: string,
    sink: PresenceSink,
    self: string,
    requestSync: () => void,
    ownChangeLost: () => void
  ) {
    this.#sink = sink
    this.#self = self
    this.#requestSync = requestSync
    this.#ownChangeLost = ownChangeLost
  }

  /** Whether the first sync is done. */
  get synced (): boolean {
    return this.#position !== undefined
  }

  /** The instances that have members here. */
  origins (): IterableIterator<string> {
    return this.#members.keys()
  }

  /** Every member, instance by instance. */
  * entries (): Generator<[origin: string, userId: string, state: MemberState]> {
    for (const [origin, members] of this.#members) {
      for (const [userId, { state }] of members) yield [origin, userId, state]
    }
  }

  /** A message from the channel. */
  receive (change: PresenceChange): void {
    if (this.#held.length >= MAX_HELD) {
      // Redis is slow to answer a sync: let go of what is held, the sync reads its outcome from the hash instead.
      this.#held = []
      this.#requestSync()
    }
    this.#held.push(change)
    if (!this.syncing && this.synced) this.drain()
  }

  /**
   * Makes the mirror what `snapshot` says, taking each instance's `verdict` into account, and reports the differences;
   * changes held from before the snapshot are then dropped by `drain`.
   */
  sync (snapshot: PresenceSnapshot, verdict: (origin: string) => OriginVerdict): void {
    const origins = new Set([...this.#members.keys(), ...snapshot.members.keys()])
    for (const origin of origins) {
      const said = verdict(origin)
      const now = said === 'dead' ? undefined : snapshot.members.get(origin)
      const before = this.#members.get(origin)
      if (said === 'unknown' && before) {
        // Keep what it had, updated by what the hash holds; the owner syncs again once its liveness is known.
        for (const [userId, state] of now ?? []) this.#set(origin, userId, state)
        continue
      }
      for (const userId of [...before?.keys() ?? []]) {
        if (!now?.has(userId)) this.#set(origin, userId, null)
      }
      for (const [userId, state] of now ?? []) this.#set(origin, userId, state)
    }
    this.#position = snapshot.position
    for (const resolve of this.#onSynced) resolve()
    this.#onSynced = []
  }

  /** Resolves true once the first sync is done, or false after `timeout` ms. */
  untilSynced (timeout: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeout).unref()
      this.#onSynced.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  /**
   * Applies the held changes that follow the last one, drops those already applied, passes typing on. Returns false
   * (and asks for a sync) when a change shows a gap; the changes from there on stay held.
   */
  drain (): boolean {
    while (this.#held.length > 0) {
      const change = this.#held[0]!
      if (change.kind === 'typing') {
        this.#held.shift()
        if (change.origin !== this.#self) this.#sink.typing(this.povId, change.origin, change.userId, change.typing)
        continue
      }
      const order = comparePositions(change.position, this.#position!)
      if (order <= 0) {
        this.#held.shift()
      } else if (this.#follows(change.position)) {
        this.#held.shift()
        this.#position = change.position
        this.#apply(change)
      } else {
        this.#requestSync()
        return false
      }
    }
    return true
  }

  /** Instance `origin` is gone but the hash held nothing of it any more (nothing will come on the channel). */
  removeOrigin (origin: string): void {
    for (const userId of [...this.#members.get(origin)?.keys() ?? []]) this.#set(origin, userId, null)
  }

  /** The PoV is no longer watched: nothing more is reported. */
  close (): void {
    this.#held = []
    for (const resolve of this.#onSynced) resolve()
    this.#onSynced = []
  }

  /** The change directly follows the last one applied (or creates the hash the snapshot did not find). */
  #follows ([epoch, n]: ChangePosition): boolean {
    const [lastEpoch, lastN] = this.#position!
    return (epoch === lastEpoch && n === lastN + 1) || (lastEpoch === 0 && n === 1)
  }

  #apply (change: PresenceChange): void {
    if (change.kind === 'typing') return
    if (change.origin === this.#self) {
      // Only another instance that took this one for dead removes its members: announce them again.
      if (change.kind === 'gone') this.#ownChangeLost()
      return
    }
    if (change.kind === 'gone') this.removeOrigin(change.origin)
    else this.#set(change.origin, change.userId, change.state)
  }

  /** Records one member's state and reports it if it changed. */
  #set (origin: string, userId: string, state: MemberState | null): void {
    let members = this.#members.get(origin)
    if (state === null) {
      if (!members?.delete(userId)) return
      if (members.size === 0) this.#members.delete(origin)
      this.#sink.member(this.povId, origin, userId, null)
      return
    }
    const text = encodeState(state)
    if (members?.get(userId)?.text === text) return
    if (!members) this.#members.set(origin, members = new Map())
    members.set(userId, { state, text })
    this.#sink.member(this.povId, origin, userId, state)
  }
}

/** Orders two positions of one PoV's changes (a later epoch is a later hash). */
function comparePositions ([epochA, nA]: ChangePosition, [epochB, nB]: ChangePosition): number {
  return epochA !== epochB ? epochA - epochB : nA - nB
}
