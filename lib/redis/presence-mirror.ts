/**
 * One watched PoV's presence on one instance of the Redis broker: the other instances' members as this instance last
 * learned them, kept up to date from the PoV's channel, and every change handed to the plugin once, in order.
 *
 * Each change on the channel carries its position in the PoV's numbered changes. The mirror knows the position of
 * the last change it applied (or of the snapshot it started from), so a change at or before it is one the mirror
 * already holds and is dropped, the next one is applied, and anything else means changes were missed: the
 * ordered-channel engine (`ordered-channel.ts`) holds what arrives and has the hash read again (`sync`). This is how
 * a snapshot and the live changes meet without a lost or stale update. The mirror does no I/O itself.
 */
import type { MemberState, PresenceSink } from '../broker.js'
import type { OrderedSubject, Placement } from './ordered-channel.js'
import { encodeState, type ChangePosition, type PresenceChange, type PresenceSnapshot } from './presence-scripts.js'

/** How the owner decides, during a sync, what to make of an instance's members. */
export type OriginVerdict =
  /** Alive: the hash is the truth for it. */
  | 'alive'
  /** Gone: none of its members stay. */
  | 'dead'
  /** Its liveness is unknown for now (Redis lost its heartbeat): members it had stay until that is settled. */
  | 'unknown'

export class PresenceMirror implements OrderedSubject<PresenceChange> {
  readonly #sink: PresenceSink
  readonly #self: string
  readonly #ownChangeLost: () => void
  /** `watch` calls not yet matched by `unwatch`. */
  refs = 1
  /** Instance → user → state (and its text, to tell a change from a repeat). */
  readonly #members = new Map<string, Map<string, { state: MemberState, text: string }>>()
  /** Position of the last change applied; undefined until the first sync. */
  #position: ChangePosition | undefined
  #onSynced: Array<() => void> = []

  /** @param ownChangeLost the PoV's members of this instance were removed by another one (which took it for dead) */
  constructor (
    readonly povId: string,
    readonly channel: string,
    sink: PresenceSink,
    self: string,
    ownChangeLost: () => void
  ) {
    this.#sink = sink
    this.#self = self
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

  /** Where a change from the channel falls: typing always passes; a member change is applied, old, or after a gap. */
  place (change: PresenceChange): Placement {
    if (change.kind === 'typing') return 'next'
    if (comparePositions(change.position, this.#position!) <= 0) return 'applied'
    return this.#follows(change.position) ? 'next' : 'gap'
  }

  /** Applies the change `place` called the next one (typing is passed on). */
  apply (change: PresenceChange): void {
    if (change.kind === 'typing') {
      if (change.origin !== this.#self) this.#sink.typing(this.povId, change.origin, change.userId, change.typing)
      return
    }
    this.#position = change.position
    if (change.origin === this.#self) {
      // Only another instance that took this one for dead removes its members: announce them again.
      if (change.kind === 'gone') this.#ownChangeLost()
      return
    }
    if (change.kind === 'gone') this.removeOrigin(change.origin)
    else this.#set(change.origin, change.userId, change.state)
  }

  /**
   * Makes the mirror what `snapshot` says, taking each instance's `verdict` into account, and reports the differences;
   * changes held from before the snapshot are then dropped as applied.
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

  /** Instance `origin` is gone but the hash held nothing of it any more (nothing will come on the channel). */
  removeOrigin (origin: string): void {
    for (const userId of [...this.#members.get(origin)?.keys() ?? []]) this.#set(origin, userId, null)
  }

  /** The PoV is no longer watched: nothing more is reported. */
  close (): void {
    for (const resolve of this.#onSynced) resolve()
    this.#onSynced = []
  }

  /** The change directly follows the last one applied (or creates the hash the snapshot did not find). */
  #follows ([epoch, n]: ChangePosition): boolean {
    const [lastEpoch, lastN] = this.#position!
    return (epoch === lastEpoch && n === lastN + 1) || (lastEpoch === 0 && n === 1)
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
