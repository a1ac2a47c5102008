/**
 * A fixed-window message counter for each socket. Within a window: the first `max` messages pass, the next one
 * earns a single `RATE_LIMITED` answer, the following ones are dropped unanswered (answering would amplify a
 * flood), and once another `max` have come the socket is judged abusive and closed (4008).
 *
 * The window itself is two small integers in the socket's session (`SocketSession.#countMessage`), not an object per
 * socket: a limiter object, and the epoch milliseconds of its window's start (a 16-byte heap number: V8 keeps only
 * 32-bit integers in an object's own fields), cost 72 bytes of every idle connection.
 */
export type RateVerdict = 'pass' | 'warn' | 'drop' | 'abusive'

/**
 * Now, for the windows: whole milliseconds on the monotonic clock, counted from the process's start, so that they stay
 * within V8's small integers for the process's first 24 days (2^31 ms; later ones only cost a heap number again).
 * Monotonic, a window is not cut short or stretched by a change of the system clock either.
 */
export function rateClock (): number {
  return Math.floor(performance.now())
}

/** The verdict on the `count`th message of a window that lets `max` through. */
export function rateVerdict (count: number, max: number): RateVerdict {
  if (count <= max) return 'pass'
  if (count === max + 1) return 'warn'
  return count > 2 * max ? 'abusive' : 'drop'
}
