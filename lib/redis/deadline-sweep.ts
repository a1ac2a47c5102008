/**
 * One timer for every Redis call the broker waits on, instead of one timer (and its promises) per call: the calls are
 * kept in the order they were sent, which, all having the same timeout, is the order of their deadlines, so one
 * timer armed for the oldest unsettled call's deadline serves them all.
 *
 * A call whose deadline has passed is expired only after the event loop has next read its sockets (`setImmediate`):
 * a busy loop runs an overdue timer before it reads them, so an answer that came in time would otherwise lose to the
 * timer.
 */

/** A call the sweep watches: `settled` once its answer (or failure) came; `expire` when it is late. */
export interface Deadline {
  settled: boolean
  expire (): void
}

interface Watched {
  readonly call: Deadline
  readonly at: number
}

export class DeadlineSweep {
  readonly #ms: number
  /** Calls in the order they were sent (so by deadline); settled ones leave from the front. */
  #watched: Watched[] = []
  #head = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  /** @param ms how long a call may take */
  constructor (ms: number) {
    this.#ms = ms
  }

  /** Watches `call` from now: it is expired unless it settles within the timeout. */
  add (call: Deadline): void {
    if (this.#stopped) return
    this.#watched.push({ call, at: Date.now() + this.#ms })
    this.#timer ??= setTimeout(() => this.#sweep(), this.#ms).unref()
  }

  /** Watches nothing more; what is watched is never expired (the broker is closing and rejects it itself). */
  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#watched = []
    this.#head = 0
  }

  #sweep (): void {
    this.#timer = undefined
    this.#dropSettled()
    const now = Date.now()
    const late: Deadline[] = []
    while (this.#head < this.#watched.length && this.#watched[this.#head]!.at <= now) {
      const { call } = this.#watched[this.#head++]!
      if (!call.settled) late.push(call)
    }
    this.#dropSettled()
    if (late.length > 0) {
      setImmediate(() => {
        for (const call of late) if (!call.settled) call.expire()
      })
    }
    const next = this.#watched[this.#head]
    if (next) this.#timer = setTimeout(() => this.#sweep(), Math.max(1, next.at - now)).unref()
  }

  /** Drops the settled calls at the front, and compacts the list once half of it is gone. */
  #dropSettled (): void {
    while (this.#head < this.#watched.length && this.#watched[this.#head]!.call.settled) this.#head++
    if (this.#head === this.#watched.length) {
      this.#watched = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#watched.length) {
      this.#watched = this.#watched.slice(this.#head)
      this.#head = 0
    }
  }
}
