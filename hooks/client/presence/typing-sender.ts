/**
 * What the user's own typing on one PoV puts on the wire. A component may call `start()` on every keystroke: the
 * server hears `typing: true` at most once per `interval` (often enough to keep its `typingTimeout` from lapsing while
 * the user types on), and `typing: false` once, either when told (`stop()`) or after an `interval` without a keystroke.
 */
import type { Timers } from '../connection/timers.js'

export interface TypingSenderOptions {
  /** ms between two `typing: true` while typing goes on; also the pause after which the user stopped typing. */
  interval: number
  timers: Timers
  /** Puts `typing` on the wire; false when it could not (not connected, or presence not on for the PoV yet). */
  send: (typing: boolean) => boolean
  /** Called once the user stopped typing (after the `typing: false`). */
  stopped: () => void
}

export class TypingSender {
  readonly #options: TypingSenderOptions
  /** The server was told `typing: true` and not `false` since. */
  #announced = false
  #sentAt = 0
  #lastKeystrokeAt = 0
  #pauseTimer: unknown

  constructor (options: TypingSenderOptions) {
    this.#options = options
  }

  /** The user typed. */
  start (): void {
    const { interval, timers, send } = this.#options
    const now = this.#lastKeystrokeAt = timers.now()
    if (this.#announced && now - this.#sentAt < interval) return
    // Not sent (still connecting): the next keystroke tries again.
    if (!send(true)) return
    this.#announced = true
    this.#sentAt = now
    if (this.#pauseTimer === undefined) this.#watchPause(interval)
  }

  /** The user stopped typing (sent the note, left the field, or the component unmounted). */
  stop (): void {
    this.#clearTimer()
    if (this.#announced) {
      this.#announced = false
      this.#options.send(false)
    }
    this.#options.stopped()
  }

  /** The connection dropped: the server has stopped this typing itself, so nothing is sent. */
  forget (): void {
    this.#clearTimer()
    this.#announced = false
  }

  #watchPause (delay: number): void {
    const { interval, timers } = this.#options
    this.#pauseTimer = timers.setTimeout(() => {
      this.#pauseTimer = undefined
      const quiet = timers.now() - this.#lastKeystrokeAt
      if (quiet >= interval) this.stop()
      else if (this.#announced) this.#watchPause(interval - quiet)
    }, delay)
  }

  #clearTimer (): void {
    if (this.#pauseTimer === undefined) return
    this.#options.timers.clearTimeout(this.#pauseTimer)
    this.#pauseTimer = undefined
  }
}
