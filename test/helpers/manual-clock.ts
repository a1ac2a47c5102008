/**
 * A clock that moves only when told to, for the client's injectable `timers`: nothing sleeps, and a test says exactly
 * how much time passes.
 */
import type { Timers } from '../../hooks/index.js'

export interface ManualClock extends Timers {
  /** Moves time forward by `ms`, running every timer that falls due, in order (and those they set that fall due too). */
  advance (ms: number): void
  /** Timers waiting. */
  readonly pending: number
}

export function manualClock (start = 1_000_000): ManualClock {
  let now = start
  let timers: Array<{ at: number, callback: () => void, handle: number }> = []
  let next = 1
  return {
    now: () => now,
    setTimeout (callback, ms) {
      const handle = next++
      timers.push({ at: now + Math.max(0, ms), callback, handle })
      return handle
    },
    clearTimeout (handle) {
      timers = timers.filter((timer) => timer.handle !== handle)
    },
    advance (ms) {
      const end = now + ms
      for (;;) {
        const due = timers.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.handle - b.handle)[0]
        if (!due) break
        timers = timers.filter((timer) => timer !== due)
        now = Math.max(now, due.at)
        due.callback()
      }
      now = end
    },
    get pending () {
      return timers.length
    }
  }
}
