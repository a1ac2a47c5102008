/**
 * A fixed-window message counter for one socket. Within a window: the first `max` messages pass, the next one
 * earns a single `RATE_LIMITED` answer, the following ones are dropped unanswered (answering would amplify a
 * flood), and once another `max` have come the socket is judged abusive and closed (4008).
 */
import type { RateLimitOptions } from '../options.js'

export type RateVerdict = 'pass' | 'warn' | 'drop' | 'abusive'

export class MessageRateLimiter {
  readonly #max: number
  readonly #timeWindow: number
  #windowStart = 0
  #count = 0

  constructor ({ max, timeWindow }: RateLimitOptions) {
    this.#max = max
    this.#timeWindow = timeWindow
  }

  hit (now: number): RateVerdict {
    if (now - this.#windowStart >= this.#timeWindow) {
      this.#windowStart = now
      this.#count = 0
    }
    const count = ++this.#count
    if (count <= this.#max) return 'pass'
    if (count === this.#max + 1) return 'warn'
    return count > 2 * this.#max ? 'abusive' : 'drop'
  }
}
