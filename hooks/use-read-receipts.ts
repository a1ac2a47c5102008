/**
 * `useReadReceipts(povId)`: who has read how far, this user's mark and unread count, and `markRead`.
 */
import { useCallback, useEffect, useMemo } from 'react'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import { NOTHING_READ, type ReadReceiptsSnapshot } from './client/read-receipts/pov-read-receipts.js'
import { usePovSnapshot, type PovSnapshotSource } from './use-pov-snapshot.js'
import { useRetainedClient } from './use-web-socket.js'

export interface ReadReceipts extends ReadReceiptsSnapshot {
  /**
   * Marks the PoV read up to `cursor`, by default the newest activity the client holds of it. Shows at once; sent now,
   * or once the PoV is subscribed again when offline (kept across a reload by `persist`). Nothing is sent (false) when
   * the mark would not move forward.
   */
  readonly markRead: (cursor?: string) => boolean
  /** The users whose mark is at or after the activity with this `id` ("seen by"), sorted, the user included. */
  readonly readersOf: (activityId: string) => string[]
}

const readReceiptsPart: PovSnapshotSource<ReadReceiptsSnapshot> = {
  subscribe: (client, povId, listener) => client.subscribeReadReceipts(povId, listener),
  get: (client, povId) => client.getReadReceipts(povId),
  empty: NOTHING_READ
}

/**
 * Read receipts of `povId`: `{ reads, readCursor, unread, markRead, readersOf }`. `readCursor` and `unread` come with
 * each subscription (`subscribed`), `reads` is asked for then and kept up to date by `read` events; this user's own
 * mark moving (here or in another tab) sets `readCursor` and counts `unread` again among the activities the client
 * holds. Watches the PoV while mounted. Needs `readReceipts` on at the server: otherwise `readCursor` and `unread` stay
 * `null`, `reads` empty, and marks wait unsent.
 * @param povId the PoV, or `null`/`undefined` for none
 * @param [target] socket and token URLs, overriding the provider's
 */
export function useReadReceipts (povId: string | null | undefined, target?: ConnectionTarget): ReadReceipts {
  const client = useRealtimeClient(target)
  useRetainedClient(client)
  useEffect(() => (povId ? client.watch(povId) : undefined), [client, povId])
  useEffect(() => (povId ? client.followReads(povId) : undefined), [client, povId])
  const snapshot = usePovSnapshot(client, povId, readReceiptsPart)
  const markRead = useCallback((cursor?: string) => (povId ? client.markRead(povId, cursor) : false), [client, povId])
  const readersOf = useMemo(() => {
    // A new function whenever the marks change, so that components using it re-render.
    const marks = snapshot.reads
    return (activityId: string) => (povId && marks.length > 0 ? client.readersOf(povId, activityId) : [])
  }, [client, povId, snapshot.reads])
  return useMemo(() => ({ ...snapshot, markRead, readersOf }), [snapshot, markRead, readersOf])
}
