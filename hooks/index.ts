/**
 * `fastify-pov-realtime/hooks`: the React client of the plugin, and the framework-free client core under it.
 *
 * ```tsx
 * import { PovRealtimeProvider, useWebSocket, usePovActivities, useActivityEffect } from 'fastify-pov-realtime/hooks'
 *
 * function Feed ({ povId }: { povId: string }) {
 *   const { connectionStatus } = useWebSocket()               // 'connected' | 'disconnected' | 'reconnected'
 *   const { activities, addOptimistic } = usePovActivities(povId)   // subscribed while mounted
 *   useActivityEffect(povId, () => queryClient.invalidateQueries({ queryKey: ['pov', povId] }))
 *   return <ul>{activities.map((a) => <li key={a.id}>{a.title}</li>)}</ul>
 * }
 * ```
 *
 * With `presence` and `readReceipts` on at the server: `usePresence(povId)`, `useTyping(povId)` and
 * `useReadReceipts(povId)`; the client keeps each PoV's feed for the next reload (`persist`, `'session'` by default).
 *
 * Same-origin by default (token from `/api/auth/ws-token` with the page's cookies, socket at `ws(s)://<host>/ws`);
 * `<PovRealtimeProvider tokenUrl socketUrl options>` or a hook's own URLs override it. Every component using the same
 * socket URL shares one connection, which closes `linger` ms (default 1000) after the last of them unmounts.
 * Imports react and browser APIs only, and touches no browser global before a component mounts, so it renders on the
 * server as `'disconnected'`.
 */

// React
export { PovRealtimeProvider, useRealtimeClient } from './provider.js'
export type { PovRealtimeProviderProps, ConnectionTarget } from './provider.js'
export { useWebSocket, useConnectionStatus } from './use-web-socket.js'
export type { UseWebSocketResult, UseConnectionStatusResult } from './use-web-socket.js'
export { usePovActivities } from './use-pov-activities.js'
export type { UsePovActivitiesOptions, PovActivities } from './use-pov-activities.js'
export { useActivityEffect } from './use-activity-effect.js'
export { usePresence } from './use-presence.js'
export { useTyping } from './use-typing.js'
export type { Typing } from './use-typing.js'
export { useReadReceipts } from './use-read-receipts.js'
export type { ReadReceipts } from './use-read-receipts.js'

// The framework-free core
export { RealtimeClient, DISCONNECTED } from './realtime-client.js'
export type { ConnectionSnapshot, OutgoingMessage } from './realtime-client.js'
export type { ActivityEvent } from './activity-feed.js'
export { getSharedClient } from './shared-clients.js'
export { CLIENT_DEFAULTS, resolveSocketUrl } from './client-options.js'
export type { RealtimeClientOptions, PageLocation } from './client-options.js'
export type { ConnectionState, ConnectionStatus } from './connection-machine.js'
export { AuthError, TokenFetchError, HttpTokenProvider } from './token-source.js'
export type { SocketToken, TokenProvider, HttpTokenProviderOptions } from './token-source.js'
export { webSocketTransport } from './transport.js'
export type { Connection, ConnectionEvents, Transport, WebSocketConstructor, WebSocketLike } from './transport.js'
export { DEFAULT_BACKOFF, backoffDelay } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export type { Timers } from './timers.js'
export type { NetworkSignals } from './network-signals.js'
export type { ActivitiesSnapshot } from './activity-store.js'
export type { ReadReceiptsSnapshot } from './read-state.js'
export { clearPersistedRealtimeState, PERSIST_KEY_PREFIX } from './persisted-state.js'
export type { PersistOption, StorageLike } from './persisted-state.js'
export type { PageDocument } from './activity-monitor.js'

// The wire protocol's types, for typing what the hooks return
export type { Activity, ActivityInput } from '../types/activity.js'
export type {
  ClientMessage, ServerMessage, ActivityMessage, ErrorMessage, SubscribedMessage, Member, MemberStatus, ReadMark,
  PresenceMessage, PresenceDiffMessage, TypingEvent, ReadEvent, ReadsMessage
} from '../types/messages.js'
