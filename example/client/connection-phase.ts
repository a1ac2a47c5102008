/**
 * The connection as the page words it. The hooks' `connectionStatus` is `'disconnected'` both before the first open
 * and after a drop, and the finer `state` cycles (`waiting` → `authenticating` → `connecting` → `waiting`…) while the
 * client retries; the badge and the post form want one steady word for each situation instead:
 * `connecting` (never open yet), `online`, `retrying` (it was open, and the client is trying again), `ended` (the
 * server ended the session: signed out elsewhere, or access revoked; the client does not retry).
 */
import { useEffect } from 'react'
import { useConnectionStatus, useRealtimeClient, type RealtimeClient } from 'fastify-pov-realtime/hooks'

export type ConnectionPhase = 'connecting' | 'online' | 'retrying' | 'ended'

/** Clients that have been open at least once: kept per client, so a component mounted during a drop knows it too. */
const beenOnline = new WeakSet<RealtimeClient>()

export function useConnectionPhase (): ConnectionPhase {
  const client = useRealtimeClient()
  const { isConnected, state } = useConnectionStatus()
  if (isConnected) beenOnline.add(client)
  useEffect(() => {
    if (isConnected) beenOnline.add(client)
  }, [client, isConnected])
  if (state === 'revoked' || state === 'auth-failed') return 'ended'
  if (isConnected) return 'online'
  return beenOnline.has(client) ? 'retrying' : 'connecting'
}
