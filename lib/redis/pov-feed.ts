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
import { compareStreamIds, formatCursor, type StreamPosition } from './cursor.js'
import type { Deadline, DeadlineSweep } from './deadline-sweep.js'
import type { OrderedSubject, Placement } from './ordered-channel.js'
import type { ChannelEntry, PovKeys, RangeResult } from './scripts.js'

/** Delivery counts remembered for in-flight publishes; a publish whose entry is older than that many reports 0. */
const MAX_RECENT_COUNTS = 1024

/**
 * Someone waiting for the feed to reach a position, watched by the broker's one deadline sweep rather than a timer of
 * its own: a publishing instance waits like this for most of its publishes (the script's answer often comes before
 * the entry does on the channel), and a timer per publish was 2.6 % of its profile.
 */
interface Waiter extends Deadline {
  readonly epoch: string
  readonly id: string
  /** Called with the sockets the entry reached, 0 if the feed passed it without delivering it, or undefined on timeout. */
  readonly settle: (delivered: number | undefined) => void
}

export class PovFeed implements OrderedSubject<ChannelEntry> {
  /** `watch` calls not yet matched by `unwatch`. */
  refs = 1
  #epoch = ''
  /** The stream id of the last entry delivered (or skipped as older than the start); undefined until the start is known. */
  #last: string | undefined
  #waiters: Waiter[] = []
  /**
   * The waiters are in stream order, all of one epoch (the usual case: a publishing instance waits for its publishes
   * in the order Redis answered them), so a delivery settles a prefix of them and need not look past the first one it
   * has not reached. A waiter that breaks the order (a resume cursor, another epoch) turns this off until none is left.
   */
  #waitersInOrder = true
  #onStarted: Array<() => void> = []
  #closed = false
  /** Publishes of this PoV from this instance that wait for their entry to come back. */
  #publishesInFlight = 0
  /**
   * Sockets reached by recent entries (key `<epoch>.<id>`), kept only while publishes are in flight: an entry often
   * comes back on the channel before the publish script's answer does.
   */
  readonly #recentCounts = new Map<string, number>()

  /**
   * @param deliver hands one entry (its cursor, `<epoch>.<id>`) to this instance's sockets; returns how many it reached
   * @param deadlines expires the waits of `reach` after the broker's timeout
   */
  constructor (
    readonly povId: string,
    /** The PoV's keys and channel, made once for the publishes and syncs of a watched PoV. */
    readonly keys: PovKeys,
    private readonly deliver: (cursor: string, json: string | Buffer) => number,
    private readonly deadlines: DeadlineSweep
  ) {}

  get channel (): string {
    return this.keys.channel
  }

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
    this.#deliver(entry.id, entry.epoch, entry.cursor, entry.json)
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
      if (compareStreamIds(entry.id, after) > 0) this.#deliver(entry.id, epoch, formatCursor(epoch, entry.id), entry.json)
    }
    // The next entry on the channel follows the history's newest one, even when the window no longer holds it.
    this.#epoch = epoch
    this.#last = last
    this.#settleWaiters()
  }

  /**
   * Resolves once the feed has reached `position`: with the number of sockets that entry reached (0 when the feed
   * started after it), or undefined after the broker's timeout.
   */
  reach ({ epoch, id }: StreamPosition): Promise<number | undefined> {
    if (this.hasReached({ epoch, id }) || this.#closed) return Promise.resolve(0)
    return new Promise((resolve) => {
      const waiter: Waiter = {
        epoch,
        id,
        settled: false,
        settle: resolve,
        expire: () => {
          const at = this.#waiters.indexOf(waiter)
          if (at !== -1) this.#waiters.splice(at, 1)
          waiter.settled = true
          resolve(undefined)
        }
      }
      const last = this.#waiters.at(-1)
      if (last && (last.epoch !== epoch || compareStreamIds(last.id, id) > 0)) this.#waitersInOrder = false
      this.#waiters.push(waiter)
      this.deadlines.add(waiter)
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
   * Resolves, once the published entry at `cursor` (`position`'s) has come back, with the number of sockets it reached
   * here (0 when it did not come back within the broker's timeout: it is delivered when it does).
   */
  async publishDelivered (position: StreamPosition, cursor: string): Promise<number> {
    const known = this.#recentCounts.get(cursor)
    const delivered = known ?? await this.reach(position) ?? 0
    this.publishFailed()
    return delivered
  }

  /** The PoV is no longer watched: nothing more will be delivered; waiters get 0. */
  close (): void {
    this.#closed = true
    for (const resolve of this.#onStarted) resolve()
    this.#onStarted = []
    for (const waiter of this.#waiters) {
      waiter.settled = true
      waiter.settle(0)
    }
    this.#waiters = []
    this.#waitersInOrder = true
  }

  #deliver (id: string, epoch: string, cursor: string, json: string | Buffer): void {
    this.#epoch = epoch
    this.#last = id
    const delivered = this.deliver(cursor, json)
    if (this.#publishesInFlight > 0) {
      this.#recentCounts.set(cursor, delivered)
      if (this.#recentCounts.size > MAX_RECENT_COUNTS) this.#recentCounts.delete(this.#recentCounts.keys().next().value!)
    }
    this.#settleWaiters(id, delivered)
  }

  /** Settles the waiters the feed has reached, keeping the others in place (no new array per delivery). */
  #settleWaiters (deliveredId?: string, delivered = 0): void {
    const waiters = this.#waiters
    if (waiters.length === 0) return
    let kept = 0
    let i = 0
    for (; i < waiters.length; i++) {
      const waiter = waiters[i]!
      if (!this.hasReached(waiter)) {
        if (this.#waitersInOrder) break // nor any after it
        waiters[kept++] = waiter
        continue
      }
      waiter.settled = true
      waiter.settle(waiter.id === deliveredId ? delivered : 0)
    }
    if (i === waiters.length) {
      waiters.length = kept
    } else if (i > 0) {
      waiters.splice(0, i)
    }
    if (waiters.length === 0) this.#waitersInOrder = true
  }
}
