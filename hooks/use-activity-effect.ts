/**
 * `useActivityEffect(povId, effect)`: the app's hook for invalidating its own caches when a PoV changes.
 */
import { useEffect, useInsertionEffect, useRef } from 'react'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import type { ActivityEvent } from './client/activity-feed.js'
import { useRetainedClient } from './use-web-socket.js'

/**
 * Calls `effect` with each new activity of `povId` (`{ type: 'activity', activity, cursor }`), and with
 * `{ type: 'resync' }` after a gap that could not be filled (a reconnect whose resume answered `recovered: false`, or
 * the server's in-band `resync` message after its broker lost activities): something may have been missed, so refetch. Watches the PoV while mounted. `effect` may change on every render: the latest one is called.
 *
 * ```ts
 * useActivityEffect(povId, () => queryClient.invalidateQueries({ queryKey: ['pov', povId] }))
 * ```
 * @param povId the PoV, or `null`/`undefined` for none
 * @param effect called outside rendering, once per event
 * @param [target] socket and token URLs, overriding the provider's
 */
export function useActivityEffect (
  povId: string | null | undefined,
  effect: (event: ActivityEvent) => void,
  target?: ConnectionTarget
): void {
  const client = useRealtimeClient(target)
  const latest = useRef(effect)
  useInsertionEffect(() => { latest.current = effect })
  useRetainedClient(client)
  useEffect(() => {
    if (!povId) return
    const stopListening = client.onActivity(povId, (event) => latest.current(event))
    const unwatch = client.watch(povId)
    return () => {
      stopListening()
      unwatch()
    }
  }, [client, povId])
}
