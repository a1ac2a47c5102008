/**
 * What every per-PoV hook does to read its part of the PoV's state (activities, members, typing, read receipts):
 * `useSyncExternalStore` on the client's published snapshot, the part's empty value for no PoV and on the server.
 */
import { useCallback, useSyncExternalStore } from 'react'
import type { RealtimeClient } from './client/realtime-client.js'

/** How to read one part of a PoV's state. Define it once, outside the component: the hook depends on its identity. */
export interface PovSnapshotSource<T> {
  subscribe (client: RealtimeClient, povId: string, listener: () => void): () => void
  get (client: RealtimeClient, povId: string): T
  /** What shows for no PoV, and on the server. */
  readonly empty: T
}

const noChanges = (): void => {}

/** `source`'s part of `povId`'s state, as `client` publishes it; re-renders on its changes only. */
export function usePovSnapshot<T> (client: RealtimeClient, povId: string | null | undefined, source: PovSnapshotSource<T>): T {
  const subscribe = useCallback(
    (listener: () => void) => (povId ? source.subscribe(client, povId, listener) : noChanges),
    [client, povId, source])
  const getSnapshot = useCallback(() => (povId ? source.get(client, povId) : source.empty), [client, povId, source])
  const getServerSnapshot = useCallback(() => source.empty, [source])
  return useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot)
}
