/**
 * The release functions the client hands out (`retain`, `watch`, `followReads`, …) are a component's cleanup, which
 * React may run twice: only the first call may count.
 */

/** `release`, made to run on the first call only. */
export function releaseOnce (release: () => void): () => void {
  let released = false
  return () => {
    if (released) return
    released = true
    release()
  }
}
