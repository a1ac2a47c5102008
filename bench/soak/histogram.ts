/**
 * Delivery latencies in a fixed set of buckets, so that a soak of any length holds the same memory: 0.1 ms wide up to
 * 5 s, and one bucket beyond (whose percentile is the largest value seen).
 */
const RESOLUTION_MS = 0.1
const LIMIT_MS = 5000

export class LatencyHistogram {
  readonly #buckets = new Uint32Array(LIMIT_MS / RESOLUTION_MS + 1)
  #count = 0
  #max = 0

  record (ms: number): void {
    const value = Math.max(0, ms) // clocks of two processes may disagree by a hair
    this.#buckets[Math.min(this.#buckets.length - 1, Math.floor(value / RESOLUTION_MS))]!++
    this.#count++
    if (value > this.#max) this.#max = value
  }

  get count (): number {
    return this.#count
  }

  get max (): number {
    return this.#max
  }

  /** The `q` quantile (0 < q ≤ 1), to the bucket's upper edge; `NaN` when nothing was recorded. */
  quantile (q: number): number {
    if (this.#count === 0) return NaN
    const rank = Math.ceil(q * this.#count)
    let seen = 0
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i]!
      if (seen >= rank) return i === this.#buckets.length - 1 ? this.#max : Math.min(this.#max, (i + 1) * RESOLUTION_MS)
    }
    return this.#max
  }

  reset (): void {
    this.#buckets.fill(0)
    this.#count = 0
    this.#max = 0
  }
}
