/**
 * `useWebSocket()` and `useConnectionStatus()`: the shared connection as React state.
 */
import { useCallback, useEffect, useMemo, useSyncExternalStore } from 'react'
import type { ServerMessage } from '../types/messages.js'
import type { ConnectionStatus } from './client/connection/connection-machine.js'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import { DISCONNECTED, type ConnectionSnapshot, type OutgoingMessage, type RealtimeClient } from './client/realtime-client.js'
import type { AuthError } from './client/connection/token-source.js'

export interface UseWebSocketResult {
  /** True while the socket is open. */
  readonly isConnected: boolean
  /** `'disconnected'` until the first open, `'connected'`, then `'reconnected'` after any reconnection. */
  readonly connectionStatus: ConnectionStatus
  /** The last message from the server, parsed (never `pong`); `null` before the first. */
  readonly lastMessage: ServerMessage | null
  /**
   * Sends a message now, or queues it while disconnected (bounded: the oldest is dropped) to send on reconnect.
   * `subscribe` / `unsubscribe` count as watching / unwatching that PoV.
   */
  readonly sendMessage: (message: OutgoingMessage) => void
  /** Set when the token route refused the session (signed out): the client stopped reconnecting. */
  readonly authError: AuthError | null
  /** Connects now (after signing in again, or to skip a backoff wait). */
  readonly reconnect: () => void
}

export interface UseConnectionStatusResult {
  readonly isConnected: boolean
  readonly connectionStatus: ConnectionStatus
  readonly authError: AuthError | null
  /** The finer state: `'idle' | 'authenticating' | 'connecting' | 'open' | 'waiting' | 'auth-failed' | 'revoked'`. */
  readonly state: ConnectionSnapshot['state']
  readonly reconnect: () => void
}

const noMessage = (): null => null
const neverConnected = (): ConnectionSnapshot => DISCONNECTED

/** Keeps `client` connected while the component is mounted. */
export function useRetainedClient (client: RealtimeClient): void {
  useEffect(() => client.retain(), [client])
}

/**
 * The shared connection: `{ isConnected, connectionStatus, lastMessage, sendMessage, authError, reconnect }`.
 * Re-renders on every (batched) message; a component that only shows the status should use
 * {@link useConnectionStatus}.
 * @param [target] socket and token URLs, overriding the provider's (default: same origin, `/ws` and `/api/auth/ws-token`)
 */
export function useWebSocket (target?: ConnectionTarget): UseWebSocketResult {
  return useClientWebSocket(useRealtimeClient(target))
}

/** `useWebSocket` on a given client (the test doubles run it on theirs). */
export function useClientWebSocket (client: RealtimeClient): UseWebSocketResult {
  useRetainedClient(client)
  const connection = useSyncExternalStore(client.subscribeConnection, client.getConnection, neverConnected)
  const lastMessage = useSyncExternalStore(client.subscribeLastMessage, client.getLastMessage, noMessage)
  const sendMessage = useCallback((message: OutgoingMessage) => client.send(message), [client])
  const reconnect = useCallback(() => client.reconnect(), [client])
  return useMemo(() => ({
    isConnected: connection.isConnected,
    connectionStatus: connection.status,
    lastMessage,
    sendMessage,
    authError: connection.authError,
    reconnect
  }), [connection, lastMessage, sendMessage, reconnect])
}

/**
 * The connection's status only: re-renders when it changes, not on messages.
 * @param [target] socket and token URLs, overriding the provider's
 */
export function useConnectionStatus (target?: ConnectionTarget): UseConnectionStatusResult {
  const client = useRealtimeClient(target)
  useRetainedClient(client)
  const connection = useSyncExternalStore(client.subscribeConnection, client.getConnection, neverConnected)
  const reconnect = useCallback(() => client.reconnect(), [client])
  return useMemo(() => ({
    isConnected: connection.isConnected,
    connectionStatus: connection.status,
    authError: connection.authError,
    state: connection.state,
    reconnect
  }), [connection, reconnect])
}
