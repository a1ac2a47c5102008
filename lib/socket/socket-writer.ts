/**
 * Batches the frames one socket gets in one turn of the event loop into one write. The first frame of a turn is
 * written at once (no added latency, no cost when one frame per turn is the rule); a socket written to again in the
 * same turn is corked, and every corked socket is uncorked when the turn's synchronous work ends, so its other frames
 * leave in one `writev`. On loopback most of a delivery's cost is the system call (the receiver's TCP path runs inside
 * it), so ten broadcasts in one turn cost about two writes per socket instead of ten.
 *
 * "A turn" ends at the next `process.nextTick`: the publisher's synchronous loop, or a broker handing over several
 * messages from one read. Corked bytes are in the socket's writable buffer (so in `ws.bufferedAmount`) until then,
 * although the kernel may take them all: a queue over the limit is judged after a `flush`, and the writer's `flushed`
 * callback, called after the turn's uncork, is where the slow-consumer check belongs.
 */
import type { Duplex } from 'node:stream'

/** Counts turns that wrote anything: a writer last written in an earlier one writes at once. */
let turn = 1
let endOfTurnScheduled = false
let corkedThisTurn: SocketWriter[] = []

function endTurn (): void {
  endOfTurnScheduled = false
  turn++
  const writers = corkedThisTurn
  corkedThisTurn = []
  for (const writer of writers) writer.endTurn()
}

/** One socket's writes of whole frames (ready bytes), corked from its second write in a turn. */
export class SocketWriter {
  readonly #socket: Duplex
  readonly #flushed: () => void
  #lastTurn = 0
  #corked = false

  /**
   * @param socket the connection's socket
   * @param flushed called after the end of a turn sent what a cork held
   */
  constructor (socket: Duplex, flushed: () => void) {
    this.#socket = socket
    this.#flushed = flushed
  }

  /** Writes `frame`: at once when it is the socket's first of this turn, else into the socket's cork. */
  write (frame: Buffer): void {
    if (!endOfTurnScheduled) {
      endOfTurnScheduled = true
      process.nextTick(endTurn)
    }
    if (this.#lastTurn !== turn) {
      this.#lastTurn = turn
      this.#socket.write(frame)
      return
    }
    if (!this.#corked) {
      this.#corked = true
      this.#socket.cork()
      corkedThisTurn.push(this)
    }
    this.#socket.write(frame)
  }

  /** Sends what the cork holds now (before the turn ends); returns whether anything was corked. */
  flush (): boolean {
    if (!this.#corked) return false
    this.#corked = false
    this.#socket.uncork()
    return true
  }

  /** The turn ended (called by this module only): uncork, then let the owner look at what is still queued. */
  endTurn (): void {
    if (this.flush()) this.#flushed()
  }
}
