/**
 * Coalesces change notifications: everything that changes inside one window is announced once, when it closes.
 * This is what keeps a burst of a thousand activities from rendering a component a thousand times.
 */
import type { Timers } from '../connection/timers.js'

export class BatchScheduler {
  readonly #windowMs: number
  readonly #timers: Timers
  readonly #pending = new Set<() => void>()
  #timer: unknown

  /**
   * @param windowMs how long changes gather before one flush; 0 flushes synchronously (the test doubles use it)
   * @param timers the clock
   */
  constructor (windowMs: number, timers: Timers) {
    this.#windowMs = windowMs
    this.#timers = timers
  }

  /** Runs `flush` at the end of the current window (once, however often it is scheduled meanwhile). */
  schedule (flush: () => void): void {
    if (this.#windowMs <= 0) {
      flush()
      return
    }
    this.#pending.add(flush)
    if (this.#timer === undefined) this.#timer = this.#timers.setTimeout(() => this.flush(), this.#windowMs)
  }

  /** Runs every pending flush now. */
  flush (): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
    const pending = [...this.#pending]
    this.#pending.clear()
    for (const flush of pending) flush()
  }
}
