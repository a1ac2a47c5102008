/**
 * `fastify-pov-realtime/client`: the framework-free client core (connection, token refresh, reconnection,
 * re-subscription, the per-PoV feeds, presence and read receipts). No React here: `fastify-pov-realtime/hooks` is
 * the React layer over it and re-exports all of this.
 */
export { RealtimeClient, DISCONNECTED } from './realtime-client.js'
export type { ConnectionSnapshot, OutgoingMessage } from './realtime-client.js'
export { REVOKED_MESSAGE } from './activity-feed.js'
export type { ActivityEvent } from './activity-feed.js'
export { getSharedClient } from './shared-clients.js'
export { CLIENT_DEFAULTS, resolveSocketUrl } from './client-options.js'
export type { RealtimeClientOptions, PageLocation } from './client-options.js'
export type { ConnectionState, ConnectionStatus } from './connection/connection-machine.js'
export { AuthError, TokenFetchError, HttpTokenProvider } from './connection/token-source.js'
export type { SocketToken, TokenProvider, HttpTokenProviderOptions } from './connection/token-source.js'
export { webSocketTransport } from './connection/transport.js'
export type { Connection, ConnectionEvents, Transport, WebSocketConstructor, WebSocketLike } from './connection/transport.js'
export { DEFAULT_BACKOFF, backoffDelay } from './connection/backoff.js'
export type { BackoffOptions } from './connection/backoff.js'
export type { Timers } from './connection/timers.js'
export type { NetworkSignals } from './connection/network-signals.js'
export type { ActivitiesSnapshot } from './activity-list.js'
export type { ReadReceiptsSnapshot } from './read-receipts/pov-read-receipts.js'
export { clearPersistedRealtimeState, PERSIST_KEY_PREFIX } from './persistence/persisted-state.js'
export type { PersistOption, StorageLike } from './persistence/persisted-state.js'
export type { PageDocument } from './presence/idle-detector.js'

// The wire protocol's types, for typing what the client hands out
export type { Activity, ActivityInput } from '../../types/activity.js'
export type {
  ClientMessage, ServerMessage, ActivityMessage, ErrorMessage, SubscribedMessage, UnsubscribedMessage, ResyncMessage, Member,
  MemberStatus, ReadMark, PresenceMessage, PresenceDiffMessage, TypingEvent, ReadEvent, ReadsMessage
} from '../../types/messages.js'
