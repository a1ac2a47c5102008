/**
 * `usePovActivities(povId)`: a PoV's live activities, subscribed while the component is mounted.
 */
import { useCallback, useEffect, useMemo } from 'react'
import type { Activity, ActivityInput } from '../types/activity.js'
import type { ErrorMessage } from '../types/messages.js'
import { EMPTY_ACTIVITIES, type ActivitiesSnapshot } from './client/activity-list.js'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import { usePovSnapshot, type PovSnapshotSource } from './use-pov-snapshot.js'
import { useRetainedClient } from './use-web-socket.js'

export interface UsePovActivitiesOptions extends ConnectionTarget {
  /**
   * The most activities returned, newest kept. Default: all the client keeps, which is its `activityLimit`
   * (200 unless the provider says otherwise); a larger `limit` does not keep more.
   */
  limit?: number
  /** ms an optimistic activity may stay unconfirmed. Default: the client's `optimisticTimeout` (30000). */
  optimisticTimeout?: number
}

export interface PovActivities {
  /** The PoV's activities (their `data`), oldest first, without duplicates; unconfirmed optimistic ones last. */
  readonly activities: readonly Activity[]
  /** Ids of the optimistic entries of `activities` that the server has not confirmed yet. */
  readonly pendingIds: ReadonlySet<string>
  /** The server's refusal for this PoV (for example `FORBIDDEN`), or `null`. */
  readonly error: ErrorMessage | null
  /**
   * Shows `activity` at once (marked pending), until the server's copy with the same `id` replaces it, or
   * `removeOptimistic(id)` drops it, or `optimisticTimeout` passes. `createdAt` defaults to now.
   */
  readonly addOptimistic: (activity: ActivityInput) => void
  /** Drops an unconfirmed optimistic activity (say the post failed); false if there was none with that id. */
  readonly removeOptimistic: (id: string) => boolean
}

const activitiesPart: PovSnapshotSource<ActivitiesSnapshot> = {
  subscribe: (client, povId, listener) => client.subscribeActivities(povId, listener),
  get: (client, povId) => client.getActivities(povId),
  empty: EMPTY_ACTIVITIES
}

/**
 * Subscribes to `povId` while mounted (one subscription however many components watch it; the last to unmount
 * unsubscribes) and returns its activities. Re-renders at most once per batch window, and only when this PoV changed.
 * @param povId the PoV, or `null`/`undefined` to watch none
 * @param [options] `limit`, `optimisticTimeout`, and the URLs
 */
export function usePovActivities (povId: string | null | undefined, options: UsePovActivitiesOptions = {}): PovActivities {
  const { limit, optimisticTimeout, socketUrl, tokenUrl } = options
  const client = useRealtimeClient({ socketUrl, tokenUrl })
  useRetainedClient(client)
  useEffect(() => (povId ? client.watch(povId) : undefined), [client, povId])
  const snapshot = usePovSnapshot(client, povId, activitiesPart)
  const activities = useMemo(
    () => (limit !== undefined && snapshot.activities.length > limit ? snapshot.activities.slice(-limit) : snapshot.activities),
    [snapshot, limit])
  const addOptimistic = useCallback((activity: ActivityInput) => {
    if (povId) client.addOptimistic(povId, activity, optimisticTimeout)
  }, [client, povId, optimisticTimeout])
  const removeOptimistic = useCallback((id: string) => (povId ? client.removeOptimistic(povId, id) : false), [client, povId])
  return useMemo(() => ({
    activities,
    pendingIds: snapshot.pendingIds,
    error: snapshot.error,
    addOptimistic,
    removeOptimistic
  }), [activities, snapshot, addOptimistic, removeOptimistic])
}
