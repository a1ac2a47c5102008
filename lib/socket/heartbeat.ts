/**
 * The heartbeat: every socket is pinged once per `heartbeatInterval` and cut at its next turn if it did not echo the
 * ping (`SocketSession.heartbeat`), so a peer that stops reading is gone within two intervals.
 *
 * The pings are spread over the interval in slices of at most `HEARTBEAT_SLICE_SOCKETS` (a ping is a write system
 * call: 500 at once held the event loop for 80 ms on a loaded 2-core machine, 18,000 would hold it for seconds), each
 * slice going on from where the last one stopped; few sockets: one slice, all of them at once. A round over the
 * sockets must end within one interval, so the slices keep pace with the number of sockets: when sockets join and
 * need more slices than the pending one was planned for, it comes sooner (else those who joined after a quiet spell
 * waited an interval and more for their first ping, and a deaf one among them was cut only after 2.4 intervals).
 */
import { randomBytes } from 'node:crypto'
import { HEARTBEAT_MIN_SLICE_MS, HEARTBEAT_SLICE_SOCKETS, PING_PAYLOAD_BYTES } from '../constants.js'

/** What the heartbeat pings. */
export interface HeartbeatPeer {
  /**
   * One tick: the ping's payload is the `PING_PAYLOAD_BYTES` of `block` (the slice's random bytes, shared by its
   * peers) from `offset`.
   */
  heartbeat (block: Buffer, offset: number): void
}

export class Heartbeat<P extends HeartbeatPeer> {
  readonly #peers: ReadonlySet<P>
  readonly #interval: number
  #timer: NodeJS.Timeout | undefined
  /** Where the current round over the peers is. */
  #round: Iterator<P> = [][Symbol.iterator]()
  /** When the last slice was due (`performance.now()`). */
  #lastDue = 0
  /** The share of the interval the pending slice was planned a slice's distance from the last one. */
  #share = 0

  /** @param peers the live set of peers (the heartbeat reads it; sockets join and leave it) */
  constructor (peers: ReadonlySet<P>, interval: number) {
    this.#peers = peers
    this.#interval = interval
  }

  start (): void {
    this.#lastDue = performance.now()
    this.#slice()
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Peers joined: when they call for more slices per interval than planned, the pending slice comes sooner. */
  joined (): void {
    if (this.#timer === undefined) return
    const share = this.#shareFor(this.#peers.size)
    if (share >= this.#share) return
    this.#share = share
    this.#schedule()
  }

  #slicesFor (size: number): number {
    return Math.max(1, Math.min(Math.ceil(size / HEARTBEAT_SLICE_SOCKETS), Math.floor(this.#interval / HEARTBEAT_MIN_SLICE_MS)))
  }

  #shareFor (size: number): number {
    return this.#interval / this.#slicesFor(size)
  }

  #slice (): void {
    const size = this.#peers.size
    const perSlice = Math.ceil(size / this.#slicesFor(size))
    // One call for the random payloads of the whole slice; each ping gets its own bytes of it.
    const payloads = perSlice > 0 ? randomBytes(perSlice * PING_PAYLOAD_BYTES) : undefined
    for (let pinged = 0; pinged < perSlice; pinged++) {
      let next = this.#round.next()
      if (next.done === true) {
        this.#round = this.#peers.values()
        next = this.#round.next()
        if (next.done === true) break
      }
      next.value.heartbeat(payloads!, pinged * PING_PAYLOAD_BYTES)
    }
    // Due a share of the interval after this slice was due, not after it ran: a late timer (a busy event loop) does
    // not push every later round back. After a stall of more than a share, the schedule starts again from now
    // rather than catching up in a burst.
    const share = this.#shareFor(size)
    this.#lastDue = Math.max(this.#lastDue + this.#share, performance.now() - share)
    this.#share = share
    this.#schedule()
  }

  #schedule (): void {
    clearTimeout(this.#timer)
    const delay = Math.max(0, this.#lastDue + this.#share - performance.now())
    this.#timer = setTimeout(() => this.#slice(), delay).unref()
  }
}
