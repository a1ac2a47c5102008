/**
 * The browser's word that the network is back, so that a client waiting out its backoff retries at once.
 */

export interface NetworkSignals {
  /** Calls `listener` whenever the network comes back; returns the function that stops listening. */
  onOnline (listener: () => void): () => void
}

/** The page's `online` event; nothing outside a browser. Looked up when listening starts, never at import. */
export const browserNetwork: NetworkSignals = {
  onOnline (listener) {
    const target = typeof window === 'undefined' ? undefined : window
    if (typeof target?.addEventListener !== 'function') return () => {}
    target.addEventListener('online', listener)
    return () => target.removeEventListener('online', listener)
  }
}
