import { useCallback, useEffect, useMemo, useState } from 'react'
import { useActivityEffect, usePovActivities, type Activity, type ReadReceipts } from 'fastify-pov-realtime/hooks'
import { fetchActivities } from './api.js'
import { RelativeTime, useNow } from './RelativeTime.js'
import { seenByPerActivity } from './seen-by.js'
import { badge } from './unread-badge.js'

interface FeedItem {
  activity: Activity
  /** Shown optimistically, not confirmed by the server yet. */
  pending: boolean
}

/**
 * A PoV's feed, newest first: what the app's API returned when the feed was (re)loaded, merged by `id` with what
 * arrived live (and, after a reload, what the client kept: it shows before the API answers). The feed is reloaded when
 * a reconnect's resume could not fill the gap (`resync`). With read receipts on, it shows how many are new, a button to
 * mark them read, and how far each other reader has read ("Seen by", see `seen-by.ts`). Times are relative ("2 min
 * ago") and kept current.
 */
export function ActivityFeed ({ povId, userId, confirmed, receipts }: {
  povId: string
  userId: string
  /** The server's copies of what this page posted (the POST's answers). */
  confirmed: readonly Activity[]
  receipts: ReadReceipts
}) {
  const live = usePovActivities(povId)
  const [loaded, setLoaded] = useState<{ povId: string, activities: readonly Activity[] }>()
  const [loadError, setLoadError] = useState<string>()

  const reload = useCallback(async (signal?: AbortSignal) => {
    try {
      const activities = await fetchActivities(povId)
      if (signal?.aborted) return
      setLoaded({ povId, activities })
      setLoadError(undefined)
    } catch (err) {
      if (!signal?.aborted) setLoadError((err as Error).message)
    }
  }, [povId])

  useEffect(() => {
    const controller = new AbortController()
    reload(controller.signal)
    return () => controller.abort()
  }, [reload])

  // Something may have been published while the socket was down, and the server could not replay it: refetch.
  // (An app using TanStack Query or SWR would invalidate its query here.)
  useActivityEffect(povId, (event) => {
    if (event.type === 'resync') reload()
  })

  const items = useMemo(() => {
    const byId = new Map<string, FeedItem>()
    for (const activity of live.activities) byId.set(activity.id, { activity, pending: live.pendingIds.has(activity.id) })
    // Copies from the app's API are the server's: they confirm an optimistic entry even when its broadcast was missed.
    const fromApi = [...(loaded?.povId === povId ? loaded.activities : []), ...confirmed]
    for (const activity of fromApi) byId.set(activity.id, { activity, pending: false })
    return [...byId.values()].sort((a, b) => b.activity.createdAt.localeCompare(a.activity.createdAt))
  }, [loaded, live.activities, live.pendingIds, confirmed, povId])

  const { unread, markRead, readersOf } = receipts
  const seenBy = useMemo(() => seenByPerActivity(items.map((item) => item.activity), readersOf, userId), [items, readersOf, userId])
  const now = useNow()
  return (
    <section>
      <h2>
        Activity
        {unread !== null && unread > 0 && (
          <>
            {' '}<span className='badge' data-testid='unread-count' data-unread={unread}>{badge(unread)} new</span>
            {' '}<button className='secondary small' data-testid='mark-read-button' onClick={() => markRead()}>Mark all read</button>
          </>
        )}
      </h2>
      {live.error && <p className='notice' data-testid='feed-error'>{live.error.message}</p>}
      {loadError && <p className='notice' data-testid='feed-load-error'>Could not load the feed: {loadError}</p>}
      {items.length === 0 && <p className='empty' data-testid='feed-empty'>Nothing yet: post the first activity.</p>}
      <ul className='feed' data-testid='activity-feed'>
        {items.map(({ activity, pending }) => (
          <li
            key={activity.id} data-testid='activity-item' data-activity-id={activity.id} data-pending={String(pending)}
            className={`${pending ? 'pending ' : ''}severity-${activity.severity ?? 'info'}`}
          >
            <strong data-testid='activity-title'>{activity.title}</strong>
            {activity.severity && activity.severity !== 'info' && (
              <span className={`severity-label severity-label-${activity.severity}`} data-testid='activity-severity'>{activity.severity}</span>
            )}
            {activity.message && <div data-testid='activity-message'>{activity.message}</div>}
            <div className='meta'>
              <span data-testid='activity-author'>{activity.userId}</span> · <RelativeTime iso={activity.createdAt} now={now} />
              {pending && ' · sending…'}
            </div>
            <SeenBy readers={seenBy.get(activity.id) ?? []} />
          </li>
        ))}
      </ul>
    </section>
  )
}

function SeenBy ({ readers }: { readers: readonly string[] }) {
  if (readers.length === 0) return null
  return <div className='seen-by' data-testid='seen-by'>Seen by {readers.join(', ')}</div>
}
