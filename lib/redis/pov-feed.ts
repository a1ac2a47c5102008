/**
 * One PoV's live stream on one instance of the Redis broker: it turns what arrives on the PoV's channel into exactly
 * one delivery per entry, in stream order, and tells the ordered-channel engine (`ordered-channel.ts`) where each
 * entry falls.
 *
 * Each channel entry names its predecessor. The feed knows the last entry it delivered (`position`), so an entry
 * whose predecessor is that one is delivered at once; one at or before it is a duplicate and dropped; anything else
 * means entries were missed (the subscriber connection was cut, Redis was replaced): the engine holds what arrives and
 * reads the stream, whose result (`fill`) delivers what was missed before the held entries are looked at again.
 * The feed does no I/O itself.
 */
import { compareStreamIds, type StreamPosition } from './cursor.js'
import type { OrderedSubject, Placement } from './ordered-channel.js'
import type { ChannelEntry, RangeResult } from './scripts.js'

/** Delivery counts remembered for in-flight publishes; a publish whose entry is older than that many reports 0. */
const MAX_RECENT_COUNTS = 1024

/** Someone waiting for the feed to reach a position. */
interface Waiter {
  readonly epoch: string
  readonly id: string
  /** Called with the sockets the entry reached, 0 if the feed passed it without delivering it, or undefined on timeout. */
  readonly settle: (delivered: number | undefined) => void
  readonly timer: NodeJS.Timeout
}

export class PovFeed implements OrderedSubject<ChannelEntry> {
  /** `watch` calls not yet matched by `unwatch`. */
  refs = 1
  #epoch = ''
  /** The stream id of the last entry delivered (or skipped as older than the start); undefined until the start is known. */
  #last: string | undefined
  #waiters: Waiter[] = []
  #onStarted: Array<() => void> = []
  #closed = false
  /** Publishes of this PoV from this instance that wait for their entry to come back. */
  #publishesInFlight = 0
  /**
   * Sockets reached by recent entries (key `<epoch>.<id>`), kept only while publishes are in flight: an entry often
   * comes back on the channel before the publish script's answer does.
   */
  readonly #recentCounts = new Map<string, number>()

  /** @param deliver hands one entry to this instance's sockets; returns how many it reached */
  constructor (
    readonly povId: string,
    readonly channel: string,
    private readonly deliver: (id: string, epoch: string, json: string | Buffer) => number
  ) {}

  /** Whether the feed knows where it starts; until then it delivers nothing. */
  get synced (): boolean {
    return this.#last !== undefined
  }

  /** The last position delivered (or skipped), or undefined before the start. */
  get position (): StreamPosition | undefined {
    return this.#last === undefined ? undefined : { epoch: this.#epoch, id: this.#last }
  }

  /** Whether the feed has delivered (or skipped) `position`: nothing at or before it will be delivered again. */
  hasReached ({ epoch, id }: StreamPosition): boolean {
    return this.#last !== undefined && epoch === this.#epoch && compareStreamIds(id, this.#last) <= 0
  }

  /** Where an entry from the channel falls: already delivered, the next one, or after a gap. */
  place (entry: ChannelEntry): Placement {
    if (entry.epoch === this.#epoch && compareStreamIds(entry.id, this.#last!) <= 0) return 'applied'
    // Directly after the last one delivered (or the first of a PoV that had no history).
    if (entry.prev === this.#last && (entry.epoch === this.#epoch || (this.#epoch === '' && this.#last === ''))) return 'next'
    return 'gap'
  }

  /** Delivers the entry `place` called the next one. */
  apply (entry: ChannelEntry): void {
    this.#deliver(entry.id, entry.epoch, entry.json)
  }

  /** The feed starts after `position` (the PoV's newest entry when its channel was subscribed): older ones are not delivered. */
  start ({ epoch, id }: StreamPosition): void {
    this.#epoch = epoch
    this.#last = id
    for (const resolve of this.#onStarted) resolve()
    this.#onStarted = []
    this.#settleWaiters()
  }

  /** Resolves true once the feed has started, or false after `timeout` ms. */
  untilStarted (timeout: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeout).unref()
      this.#onStarted.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  /**
   * Delivers what a read of the history after `position` returned: the missed entries, or, when the gap could not be
   * filled, whatever the current history holds that this feed has not delivered.
   */
  fill ({ epoch, last, entries }: RangeResult): void {
    // Another epoch is another history (Redis lost this one): none of its entries has been delivered.
    const after = epoch === this.#epoch ? this.#last ?? '' : ''
    for (const entry of entries) {
      if (compareStreamIds(entry.id, after) > 0) this.#deliver(entry.id, epoch, entry.json)
    }
    // The next entry on the channel follows the history's newest one, even when the window no longer holds it.
    this.#epoch = epoch
    this.#last = last
    this.#settleWaiters()
  }

  /**
   * Resolves once the feed has reached `position`: with the number of sockets that entry reached (0 when the feed
   * started after it), or undefined after `timeout` ms.
   */
  reach (position: StreamPosition, timeout: number): Promise<number | undefined> {
    if (this.hasReached(position) || this.#closed) return Promise.resolve(0)
    return new Promise((resolve) => {
      const waiter: Waiter = {
        ...position,
        settle: resolve,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((other) => other !== waiter)
          resolve(undefined)
        }, timeout).unref()
      }
      this.#waiters.push(waiter)
    })
  }

  /** A publish of this PoV from this instance begins; end it with `publishDelivered` or `publishFailed`. */
  publishStarted (): void {
    this.#publishesInFlight++
  }

  /** The publish failed. */
  publishFailed (): void {
    if (--this.#publishesInFlight === 0) this.#recentCounts.clear()
  }

  /**
   * Resolves, once the published entry at `position` has come back, with the number of sockets it reached here
   * (0 when it did not come back within `timeout` ms: it is delivered when it does).
   */
  async publishDelivered (position: StreamPosition, timeout: number): Promise<number> {
    try {
      return this.#recentCounts.get(`${position.epoch}.${position.id}`) ?? await this.reach(position, timeout) ?? 0
    } finally {
      this.publishFailed()
    }
  }

  /** The PoV is no longer watched: nothing more will be delivered; waiters get 0. */
  close (): void {
    this.#closed = true
    for (const resolve of this.#onStarted) resolve()
    this.#onStarted = []
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer)
      waiter.settle(0)
    }
    this.#waiters = []
  }

  #deliver (id: string, epoch: string, json: string | Buffer): void {
    this.#epoch = epoch
    this.#last = id
    const delivered = this.deliver(id, epoch, json)
    if (this.#publishesInFlight > 0) {
      this.#recentCounts.set(`${epoch}.${id}`, delivered)
      if (this.#recentCounts.size > MAX_RECENT_COUNTS) this.#recentCounts.delete(this.#recentCounts.keys().next().value!)
    }
    this.#settleWaiters(id, delivered)
  }

  #settleWaiters (deliveredId?: string, delivered = 0): void {
    if (this.#waiters.length === 0) return
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.hasReached(waiter)) return true
      clearTimeout(waiter.timer)
      waiter.settle(waiter.id === deliveredId ? delivered : 0)
      return false
    })
  }
}
