/**
 * The client's options, their defaults, and the same-origin URLs (worked out when connecting, never at import).
 */
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { browserNetwork, type NetworkSignals } from './network-signals.js'
import { defaultTimers, type Timers } from './timers.js'
import type { TokenProvider } from './token-source.js'
import type { Transport, WebSocketConstructor } from './transport.js'

export interface RealtimeClientOptions {
  /** The socket URL: `ws(s)://…`, or a path resolved against the page (`wss:` on https pages). Default `'/ws'`. */
  socketUrl?: string
  /** The token route, absolute or relative to the page; fetched with the page's cookies. Default `'/api/auth/ws-token'`. */
  tokenUrl?: string
  /** The WebSocket class. Default: the global `WebSocket` (the `ws` package's class fits outside browsers). */
  WebSocket?: WebSocketConstructor
  /** The `fetch` used for the token route. Default: the global `fetch`. */
  fetch?: typeof globalThis.fetch
  /** Reconnection backoff: `{ initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5 }` by default. */
  reconnect?: Partial<BackoffOptions>
  /** ms between application-level pings, or `false`. Default 25000. */
  pingInterval?: number | false
  /** ms without any frame after a ping before the connection counts as dead and is replaced. Default 10000. */
  pongTimeout?: number
  /** ms a connection may take to open before the attempt is abandoned. Default 10000. */
  connectTimeout?: number
  /** Messages `sendMessage` holds while disconnected; beyond it the oldest is dropped. Default 100. */
  maxQueuedMessages?: number
  /** Activities kept per watched PoV (the oldest go first). Default 200. */
  activityLimit?: number
  /** ms an optimistic activity may stay unconfirmed before it is dropped. Default 30000. */
  optimisticTimeout?: number
  /** ms the socket stays open after the last component using it unmounts. Default 1000. */
  linger?: number
  /** ms during which changes gather into one re-render; 0 re-renders on each. Default 16. */
  batchWindow?: number
  /** Replaces the WebSocket transport altogether (the test doubles do). */
  transport?: Transport
  /** Replaces the token route (the test doubles do). */
  tokens?: TokenProvider
  /** The clock. Default: the global timers. */
  timers?: Timers
  /** Where the `online` event comes from, or `null` for nowhere. Default: `window`. */
  network?: NetworkSignals | null
  /** Random numbers in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number
}

export const CLIENT_DEFAULTS = Object.freeze({
  socketUrl: '/ws',
  tokenUrl: '/api/auth/ws-token',
  pingInterval: 25_000,
  pongTimeout: 10_000,
  connectTimeout: 10_000,
  maxQueuedMessages: 100,
  activityLimit: 200,
  optimisticTimeout: 30_000,
  linger: 1000,
  batchWindow: 16
})

/** The options with every default filled in (the transport and token provider are the client's to build). */
export interface ResolvedClientOptions extends Required<Omit<RealtimeClientOptions, 'WebSocket' | 'fetch' | 'transport' | 'tokens' | 'reconnect'>> {
  readonly reconnect: BackoffOptions
  readonly WebSocket: WebSocketConstructor | undefined
  readonly fetch: typeof globalThis.fetch | undefined
  readonly transport: Transport | undefined
  readonly tokens: TokenProvider | undefined
}

export function resolveClientOptions (options: RealtimeClientOptions): ResolvedClientOptions {
  const {
    socketUrl = CLIENT_DEFAULTS.socketUrl,
    tokenUrl = CLIENT_DEFAULTS.tokenUrl,
    pingInterval = CLIENT_DEFAULTS.pingInterval,
    pongTimeout = CLIENT_DEFAULTS.pongTimeout,
    connectTimeout = CLIENT_DEFAULTS.connectTimeout,
    maxQueuedMessages = CLIENT_DEFAULTS.maxQueuedMessages,
    activityLimit = CLIENT_DEFAULTS.activityLimit,
    optimisticTimeout = CLIENT_DEFAULTS.optimisticTimeout,
    linger = CLIENT_DEFAULTS.linger,
    batchWindow = CLIENT_DEFAULTS.batchWindow,
    timers = defaultTimers,
    network = browserNetwork,
    random = Math.random
  } = options
  return {
    socketUrl,
    tokenUrl,
    pingInterval,
    pongTimeout,
    connectTimeout,
    maxQueuedMessages,
    activityLimit,
    optimisticTimeout,
    linger,
    batchWindow,
    timers,
    network,
    random,
    reconnect: { ...DEFAULT_BACKOFF, ...options.reconnect },
    WebSocket: options.WebSocket,
    fetch: options.fetch,
    transport: options.transport,
    tokens: options.tokens
  }
}

/** The part of `location` the URLs depend on. */
export interface PageLocation {
  readonly href: string
}

/**
 * The absolute socket URL: `socketUrl` as is when it is a `ws(s)://` URL, otherwise resolved against the page,
 * with `http:` becoming `ws:` and `https:` becoming `wss:`.
 * @param socketUrl a `ws(s)://` URL or a path
 * @param [page=globalThis.location] the page's location
 */
export function resolveSocketUrl (socketUrl: string, page: PageLocation | undefined = globalThis.location): string {
  if (/^wss?:\/\//i.test(socketUrl)) return socketUrl
  if (!page) throw new Error(`cannot resolve the socket URL '${socketUrl}' outside a page: pass an absolute ws(s):// URL`)
  const url = new URL(socketUrl, page.href)
  if (url.protocol === 'https:') url.protocol = 'wss:'
  else if (url.protocol === 'http:') url.protocol = 'ws:'
  return url.href
}
