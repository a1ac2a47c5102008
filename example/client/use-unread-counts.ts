import { useEffect, useState } from 'react'
import { fetchUnreadCounts } from './api.js'

/**
 * The unread count of every PoV, from the app's HTTP route (no socket subscription per PoV): fetched on mount, when
 * `refreshKey` changes (the user switched PoV) and when the window regains focus (the user came back).
 */
export function useUnreadCounts (refreshKey: unknown): Record<string, number | null> {
  const [counts, setCounts] = useState<Record<string, number | null>>({})
  useEffect(() => {
    let cancelled = false
    const load = () => {
      fetchUnreadCounts().then((unread) => { if (!cancelled) setCounts(unread ?? {}) }, () => {})
    }
    load()
    window.addEventListener('focus', load)
    return () => {
      cancelled = true
      window.removeEventListener('focus', load)
    }
  }, [refreshKey])
  return counts
}
