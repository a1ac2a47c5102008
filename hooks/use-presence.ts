/**
 * `usePresence(povId)`: who else has the PoV open, and whether they are active or idle.
 */
import { useEffect } from 'react'
import type { Member } from '../types/messages.js'
import { NO_MEMBERS } from './client/presence/presence-store.js'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import type { RealtimeClient } from './client/realtime-client.js'
import { usePovSnapshot, type PovSnapshotSource } from './use-pov-snapshot.js'
import { useRetainedClient } from './use-web-socket.js'

const membersPart: PovSnapshotSource<readonly Member[]> = {
  subscribe: (client, povId, listener) => client.subscribeMembers(povId, listener),
  get: (client, povId) => client.getMembers(povId),
  empty: NO_MEMBERS
}

/**
 * What every presence hook does besides reading: keeps the client connected, watches the PoV, and has the client
 * report this page's activity status (`idle` / `active`) while mounted.
 */
export function usePresenceSession (client: RealtimeClient, povId: string | null | undefined): void {
  useRetainedClient(client)
  useEffect(() => client.reportActivityStatus(), [client])
  useEffect(() => (povId ? client.watch(povId) : undefined), [client, povId])
}

/**
 * The members of `povId` (users, not sockets: one person with three tabs is one member), the user included, sorted
 * by `userId`: `[{ userId, status: 'active' | 'idle', info }]`. Taken from the server's `presence` snapshot, sent on
 * every (re)subscription, then its `presence_diff`s. Watches the PoV while mounted and, while any presence hook is
 * mounted, reports this page's status (`idle` after `idleTimeout` without input or while hidden). Empty until the
 * server's snapshot arrives, and always empty when the server has `presence` off.
 * @param povId the PoV, or `null`/`undefined` for none
 * @param [target] socket and token URLs, overriding the provider's
 */
export function usePresence (povId: string | null | undefined, target?: ConnectionTarget): readonly Member[] {
  const client = useRealtimeClient(target)
  usePresenceSession(client, povId)
  return usePovSnapshot(client, povId, membersPart)
}
