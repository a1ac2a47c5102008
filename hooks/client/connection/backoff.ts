/**
 * How long to wait before the next connection attempt.
 */

export interface BackoffOptions {
  /** Delay before the first retry, in ms. Default 500. */
  initialDelay: number
  /** The cap, in ms. Default 30000. */
  maxDelay: number
  /** Growth per failed attempt. Default 2. */
  factor: number
  /** Share of each delay taken off at random (0: none, 1: anything down to 0). Default 0.5. */
  jitter: number
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  jitter: 0.5
})

/**
 * The delay before retry number `attempt` (0 for the first): `initialDelay · factor^attempt`, capped at `maxDelay`,
 * then lowered by up to `jitter` of itself at random, so that the clients of a restarted server do not all come back
 * in the same instant.
 * @param attempt failed attempts so far
 * @param options the curve
 * @param [random=Math.random] a number in [0, 1)
 */
export function backoffDelay (attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelay, options.initialDelay * options.factor ** attempt)
  return Math.round(ceiling * (1 - options.jitter * random()))
}
