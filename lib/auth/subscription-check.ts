/**
 * One call of the app's `authorizeSubscription`, bounded by `authorizeTimeout`: a check that hangs must not hold a
 * socket's messages (they are handled one at a time) nor a re-check forever. The caller decides what a check that
 * threw or timed out means: a `subscribe` refuses (fail closed), a re-check of a live subscription keeps it.
 */
import type { PovRealtimeUser, ResolvedOptions, UpgradeRequestView } from '../options.js'

/** `granted`: exactly `true`; `refused`: any other answer; `failed`: it threw, rejected or did not answer in time. */
export type AuthorizationVerdict = 'granted' | 'refused' | 'failed'

export interface AuthorizationAnswer {
  readonly verdict: AuthorizationVerdict
  /** Why it failed: what it threw, or a timeout error. */
  readonly error?: unknown
}

const GRANTED: AuthorizationAnswer = { verdict: 'granted' }
const REFUSED: AuthorizationAnswer = { verdict: 'refused' }

/**
 * Asks whether `user` may watch `povId`; never rejects. No `authorizeSubscription`: any authenticated user may.
 * `request` is the socket's view of its upgrade, taken only when `authorizeSubscription` is set; should it be missing
 * then, the check fails (closed) rather than calling the app without it.
 */
export async function checkSubscription (
  options: Pick<ResolvedOptions, 'authorizeSubscription' | 'authorizeTimeout'>,
  user: PovRealtimeUser,
  povId: string,
  request: UpgradeRequestView | undefined
): Promise<AuthorizationAnswer> {
  const authorize = options.authorizeSubscription
  if (!authorize) return GRANTED
  if (!request) return { verdict: 'failed', error: new Error('no view of the upgrade request was kept for this socket') }
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<AuthorizationAnswer>((resolve) => {
    timer = setTimeout(() => resolve({
      verdict: 'failed',
      error: new Error(`authorizeSubscription did not answer within ${options.authorizeTimeout} ms`)
    }), options.authorizeTimeout)
  })
  const answered = (async (): Promise<AuthorizationAnswer> => {
    try {
      // Only a real `true` grants access: a truthy stray value (an unawaited promise, an object) does not.
      return await authorize(user, povId, request) === true ? GRANTED : REFUSED
    } catch (error) {
      return { verdict: 'failed', error }
    }
  })()
  try {
    return await Promise.race([answered, timedOut])
  } finally {
    clearTimeout(timer)
  }
}
