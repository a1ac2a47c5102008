/**
 * "just now", "2 min ago", "3 h ago": when an activity happened, as a feed says it, kept current by one timer per
 * feed (`useNow`) rather than one per item. The exact time is in the tooltip and the `<time>` element's `dateTime`.
 */
import { useEffect, useState } from 'react'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** "just now" under a minute, then minutes, then hours; older than a day, the date and time. */
export function formatRelative (iso: string, now: number): string {
  const at = Date.parse(iso)
  const ago = now - at
  if (ago < MINUTE) return 'just now'
  if (ago < HOUR) return `${Math.floor(ago / MINUTE)} min ago`
  if (ago < 24 * HOUR) return `${Math.floor(ago / HOUR)} h ago`
  return new Date(at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

/** The current time, updated every `intervalMs`: what relative times are measured from. */
export function useNow (intervalMs = 15_000): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs)
    return () => clearInterval(timer)
  }, [intervalMs])
  return now
}

export function RelativeTime ({ iso, now }: { iso: string, now: number }) {
  return (
    <time dateTime={iso} title={new Date(iso).toLocaleString()} data-testid='activity-time'>
      {formatRelative(iso, Math.max(now, Date.parse(iso)))}
    </time>
  )
}
