/**
 * The in-process broker's per-PoV counters: each PoV numbers its own activities 1, 2, 3…, so a subscriber's cursors
 * go up by one per activity of that PoV whatever the others receive (a global number would show, in the gaps, how
 * many activities went to PoVs the subscriber is refused).
 *
 * Bounded: at most `maxPovs` counters, the least recently published forgotten first. A PoV whose counter was
 * forgotten starts a new run (`gen`) at 1. A run is named by the time it started, in microseconds from a random origin,
 * strictly increasing, so a later run always orders after an earlier one of the same PoV: read marks and replays stay
 * exact across it, and the name tells only when the run began (as an activity's `createdAt` does), not a count.
 */
import { randomInt } from 'node:crypto'
import type { Position } from './cursor.js'

/** A PoV's counter: its run, and the number of its latest activity in that run. */
interface Counter {
  readonly gen: number
  seq: number
}

export class PovSequences {
  readonly #maxPovs: number
  /** Insertion order is recency of publication: the first key is the least recently published PoV. */
  readonly #counters = new Map<string, Counter>()
  /**
   * A random origin, so that a run's name does not tell the instance's uptime: 36^7 plus up to about 12 days of
   * microseconds, so that runs are named with 8 base-36 digits (cursors of one length) for the first 18 days at least.
   */
  readonly #origin = 36 ** 7 + randomInt(2 ** 40)
  #lastGen = 0

  /** @param maxPovs counters kept; beyond that the least recently published PoV's is forgotten */
  constructor (maxPovs: number) {
    this.#maxPovs = maxPovs
  }

  /** The position of the next activity of `povId`. */
  next (povId: string): Position {
    let counter = this.#counters.get(povId)
    if (counter) {
      this.#counters.delete(povId) // re-inserted below: most recently published last
    } else {
      if (this.#counters.size >= this.#maxPovs) this.#counters.delete(this.#counters.keys().next().value!)
      counter = { gen: this.#newGen(), seq: 0 }
    }
    this.#counters.set(povId, counter)
    counter.seq++
    return { gen: counter.gen, seq: counter.seq }
  }

  clear (): void {
    this.#counters.clear()
  }

  #newGen (): number {
    const now = this.#origin + Math.floor(performance.now() * 1000)
    this.#lastGen = Math.max(now, this.#lastGen + 1)
    return this.#lastGen
  }
}
