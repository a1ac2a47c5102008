import { useEffect, useState } from 'react'
import { fetchUnreadCounts } from './api.js'

/**
 * The unread count of every PoV the user may see, from the app's HTTP route (no socket subscription per PoV): fetched
 * on mount, whenever `refreshKey` changes (the user switched PoV, the client reconnected), and when the window regains
 * focus (the user came back). Empty when the server has read receipts off.
 */
export function useUnreadCounts (refreshKey: unknown): Record<string, number | null> {
  const [counts, setCounts] = useState<Record<string, number | null>>({})
  useEffect(() => {
    let cancelled = false
    const load = () => {
      fetchUnreadCounts().then((answer) => {
        if (cancelled) return
        setCounts(Object.fromEntries(Object.entries(answer ?? {}).map(([povId, count]) => [povId, count.unread])))
      }, () => {})
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
