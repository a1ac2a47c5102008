/**
 * When an activity happened, relative ("2 min ago", see `format-relative.ts`), kept current by one timer per feed
 * (`useNow`) rather than one per item. The exact time is in the tooltip and the `<time>` element's `dateTime`.
 */
import { useEffect, useState } from 'react'
import { formatRelative } from './format-relative.js'

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
