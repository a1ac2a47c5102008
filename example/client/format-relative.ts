/**
 * "just now", "2 min ago", "3 h ago": when an activity happened, as a feed says it (`RelativeTime.tsx` shows it).
 */
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
