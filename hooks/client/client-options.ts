/**
 * The client's options, their defaults, and the same-origin URLs (worked out when connecting, never at import).
 */
import type { PageDocument } from './presence/idle-detector.js'
import { DEFAULT_BACKOFF, type BackoffOptions } from './connection/backoff.js'
import { browserNetwork, type NetworkSignals } from './connection/network-signals.js'
import type { PersistOption } from './persistence/persisted-state.js'
import { defaultTimers, type Timers } from './connection/timers.js'
import type { TokenProvider } from './connection/token-source.js'
import type { Transport, WebSocketConstructor } from './connection/transport.js'

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
  /**
   * Where each PoV's last cursor, this user's read mark, an unsent `markRead` and the newest activities are kept, so
   * that a reload shows the feed at once and resumes without a gap: `'session'` (default: survives a reload, not the
   * tab), `'local'` (survives closing the browser: activity text stays on the disk), a storage object of the app's, or
   * `false` (nothing kept). Namespaced per user (read from the WebSocket token); clear it on sign-out with
   * `clearPersistedRealtimeState()`.
   */
  persist?: PersistOption
  /** The most the kept state of one user may take, in bytes (2 per UTF-16 code unit, as browsers count). Default 262144. */
  persistMaxBytes?: number
  /** Activities kept per PoV for the next reload (the newest). Default 50. */
  persistActivities?: number
  /**
   * ms without input (pointer, keys, touch, wheel, scroll) after which the client reports `idle` (it also does while
   * the page is hidden), or `false` never to report a status. Only while a presence hook (`usePresence`, `useTyping`)
   * is mounted, and only once the server has shown that presence is on. Default 60000.
   */
  idleTimeout?: number | false
  /**
   * ms between two `typing: true` while the user keeps typing, and the pause after which `typing: false` is sent.
   * Keep it below the server's `typingTimeout` (5000 by default). Default 3000.
   */
  typingInterval?: number
  /** ms after which another member's typing indicator goes away if their `typing: false` never arrives. Default 30000. */
  typingExpiry?: number
  /** The page: its input and visibility events drive the idle status and the saving of `persist`. Default: the global `document`; `null` for none. */
  document?: PageDocument | null
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
  batchWindow: 16,
  persist: 'session',
  persistMaxBytes: 256 * 1024,
  persistActivities: 50,
  idleTimeout: 60_000,
  typingInterval: 3000,
  typingExpiry: 30_000
} as const)

/** The options with every default filled in (the transport and token provider are the client's to build). */
export interface ResolvedClientOptions extends Required<Omit<RealtimeClientOptions, 'WebSocket' | 'fetch' | 'transport' | 'tokens' | 'reconnect' | 'document'>> {
  readonly reconnect: BackoffOptions
  /** The page as given; `undefined` means the global `document`, looked up when needed (never at import). */
  readonly document: PageDocument | null | undefined
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
    persist = CLIENT_DEFAULTS.persist,
    persistMaxBytes = CLIENT_DEFAULTS.persistMaxBytes,
    persistActivities = CLIENT_DEFAULTS.persistActivities,
    idleTimeout = CLIENT_DEFAULTS.idleTimeout,
    typingInterval = CLIENT_DEFAULTS.typingInterval,
    typingExpiry = CLIENT_DEFAULTS.typingExpiry,
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
    persist,
    persistMaxBytes,
    persistActivities,
    idleTimeout,
    typingInterval,
    typingExpiry,
    document: options.document,
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

/** The page's document: the option if given (`null`: none), else the global one if there is one. */
export function resolveDocument (option: PageDocument | null | undefined): PageDocument | null {
  if (option !== undefined) return option
  return typeof document === 'undefined' ? null : document
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
