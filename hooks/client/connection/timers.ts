/**
 * The clock the client runs on. Injectable, so that tests (and the test doubles) decide how time passes.
 */

export interface Timers {
  /** Calls `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout (callback: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
  /** Milliseconds since the epoch. */
  now (): number
}

/** The longest delay `setTimeout` honours; longer ones would fire at once. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/** The environment's own timers, looked up when called (never at import), so fake timers installed later apply. */
export const defaultTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_DELAY)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
  now: () => Date.now()
}
