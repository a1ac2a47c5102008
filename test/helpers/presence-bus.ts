/**
 * Several plugin instances in one process, sharing presence through an in-memory relay: what a shared relay (the
 * Redis one) does, without Redis, so that the plugin side of presence across instances can be tested on its own.
 * Activities stay per instance (each has its own in-process broker).
 *
 * It keeps the `PresenceRelay` contract (lib/broker.ts): for a PoV an instance watches, its sink gets the other
 * instances' members already there (during `watch`) and every later change, in order per origin (delivered
 * asynchronously, as pub/sub would); never its own.
 */
import type { Broker, MemberState, PresenceRelay, PresenceSink, RemoteMember } from '../../lib/broker.js'
import { InProcessBroker } from '../../lib/in-process/index.js'

interface Instance {
  sink: PresenceSink | undefined
  readonly watched: Set<string>
  /** povId → userId → this instance's state of the member. */
  readonly members: Map<string, Map<string, MemberState>>
  /** A silenced instance's messages are lost (it is cut off, or dead without anyone noticing yet). */
  silenced: boolean
}

/** One call an instance made to its relay. */
export type RelayCall =
  | { instance: string, call: 'announce', povId: string, userId: string, state: MemberState | null }
  | { instance: string, call: 'typing', povId: string, userId: string, typing: boolean }

export class PresenceBus {
  readonly #instances = new Map<string, Instance>()
  /** Every announce and typing call, in order. */
  readonly calls: RelayCall[] = []

  /** A broker for instance `id`: in-process activities, presence through this bus. */
  broker (id: string): Broker {
    const instance: Instance = { sink: undefined, watched: new Set(), members: new Map(), silenced: false }
    this.#instances.set(id, instance)
    const activities = new InProcessBroker()
    const relay: PresenceRelay = {
      instanceId: id,
      start: (sink) => { instance.sink = sink },
      announce: (povId, userId, state) => {
        this.calls.push({ instance: id, call: 'announce', povId, userId, state })
        if (instance.silenced) return
        let members = instance.members.get(povId)
        if (state) {
          if (!members) instance.members.set(povId, members = new Map())
          members.set(userId, state)
        } else if (members?.delete(userId) && members.size === 0) {
          instance.members.delete(povId)
        }
        this.#toOthers(id, povId, (sink) => sink.member(povId, id, userId, state))
      },
      typing: (povId, userId, typing) => {
        this.calls.push({ instance: id, call: 'typing', povId, userId, typing })
        if (!instance.silenced) this.#toOthers(id, povId, (sink) => sink.typing(povId, id, userId, typing))
      },
      members: async (povId) => this.#membersBesides(id, povId)
    }
    return {
      start: (context) => activities.start(context),
      publish: (povId, json) => activities.publish(povId, json),
      watch: (povId) => {
        instance.watched.add(povId)
        for (const { origin, userId, state } of this.#membersBesides(id, povId)) instance.sink?.member(povId, origin, userId, state)
      },
      unwatch: (povId) => { instance.watched.delete(povId) },
      replay: (povId, since) => activities.replay(povId, since),
      close: () => activities.close(),
      presence: relay
    }
  }

  /** From now on, what instance `id` announces is lost (it is cut off, or died without anyone noticing yet). */
  silence (id: string): void {
    this.#instances.get(id)!.silenced = true
  }

  /** Instance `id` is known to be gone: its members leave everywhere, as a shared relay reports it. */
  remove (id: string): void {
    const instance = this.#instances.get(id)!
    instance.silenced = true
    for (const [povId, members] of instance.members) {
      for (const userId of members.keys()) this.#toOthers(id, povId, (sink) => sink.member(povId, id, userId, null))
    }
    instance.members.clear()
  }

  #membersBesides (id: string, povId: string): RemoteMember[] {
    const members: RemoteMember[] = []
    for (const [origin, instance] of this.#instances) {
      if (origin === id) continue
      for (const [userId, state] of instance.members.get(povId) ?? []) members.push({ origin, userId, state })
    }
    return members
  }

  /** Delivered on a later turn, in order, to the instances that watch the PoV then. */
  #toOthers (id: string, povId: string, deliver: (sink: PresenceSink) => void): void {
    setImmediate(() => {
      for (const [origin, instance] of this.#instances) {
        if (origin !== id && instance.watched.has(povId) && instance.sink) deliver(instance.sink)
      }
    })
  }
}
