/**
 * The plugin's options: their types, their defaults, and the one place they are checked.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { parse as parseDuration } from '@lukeed/ms'
import type { FastifyRequest } from 'fastify'
import type { Broker, HistoryOptions, PresenceRelay, ReadMarkStore } from './broker.js'
import { InvalidOptionError } from './errors.js'

/** Who a socket belongs to: what the access cookie says, carried in the WebSocket token. */
export interface PovRealtimeUser {
  userId: string
  email?: string
  role?: string
}

/**
 * What `authorizeSubscription` is told of a socket's upgrade request. The live `FastifyRequest` is let go once the
 * handshake is done (it, its reply and the raw upgrade bytes would otherwise live as long as the socket); this small
 * copy, taken when the socket opens, lives instead. See docs/migration.md.
 */
export interface UpgradeRequestView {
  /** The upgrade's request id (`request.id`), the `reqId` of its log lines. */
  readonly id: string
  /** The client's address (`request.ip`, after Fastify's `trustProxy`). */
  readonly ip: string
  /** The upgrade's path and query string (`request.url`), without a `?token=`. */
  readonly url: string
  /**
   * The upgrade's headers (`request.headers`) but the handshake's own (`connection`, `upgrade`, `sec-websocket-*`).
   * The WebSocket token was taken out before Fastify saw the request.
   */
  readonly headers: Readonly<IncomingHttpHeaders>
  /** The request decorations named in `requestDecorators`, as they were when the socket opened. */
  readonly [decoration: string]: unknown
}

export interface RateLimitOptions {
  /** Client messages allowed per socket per window. */
  max: number
  /** The window, in milliseconds. */
  timeWindow: number
}

/** The `presence` option's settings. */
export interface PresenceOptions {
  /**
   * The public face of a member: the small JSON object every watcher of the same PoV sees as the member's `info`.
   * Called once per socket, when it first subscribes (before `subscribed`, so keep it quick). It must give a plain
   * object that serializes to at most 1 KiB of JSON; anything else (a throw included) is logged at error and shown as
   * `{}`. Default: `{}` (nothing about the user is broadcast but the id).
   */
  info?: (user: PovRealtimeUser) => Record<string, unknown> | Promise<Record<string, unknown>>
  /** Milliseconds of silence after a user's last `typing: true` before `typing: false` goes out by itself. Default 5000. */
  typingTimeout?: number
}

export interface PovRealtimeOptions {
  /**
   * Required: the secret that signs the app's `accessToken` cookie JWTs (HS256). The WebSocket tokens are signed with
   * a key derived from it (HKDF-SHA256), never with it, so the app's own verifier cannot take one for a session.
   */
  secret: string
  /** The access-token cookie. Default `'accessToken'`. */
  cookieName?: string
  /** Where the WebSocket token is issued. Default `'/api/auth/ws-token'`. */
  tokenRoute?: string
  /** Where clients connect. Default `'/ws'`. */
  wsRoute?: string
  /** WebSocket token lifetime: seconds, or a duration string such as `'1h'`. Default `'1h'`. */
  tokenExpiresIn?: number | string
  /**
   * The app's own check of the access cookie. Default: verify it as an HS256 JWT signed with `secret`, with an `exp`.
   * Either way, a `userId` longer than 256 characters or with control or bidirectional-formatting characters is a 401.
   */
  verifyAccessToken?: (token: string, request: FastifyRequest) => PovRealtimeUser | Promise<PovRealtimeUser>
  /**
   * May this user watch this PoV? Default: any authenticated user. `request` is a small view of the socket's upgrade
   * request (`id`, `ip`, `url`, `headers` and the decorations `requestDecorators` names), not the live `FastifyRequest`.
   */
  authorizeSubscription?: (user: PovRealtimeUser, povId: string, request: UpgradeRequestView) => boolean | Promise<boolean>
  /**
   * Names of request decorations (`fastify.decorateRequest`, set by the app's hooks on the upgrade request) that
   * `authorizeSubscription` reads: each is copied into its `request` view when the socket opens. Default `[]`.
   */
  requestDecorators?: readonly string[]
  /** Allowed `Origin`s of the upgrade. Default: any (the token is what authenticates). */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean)
  /**
   * Milliseconds between protocol pings; a peer that has not answered the previous one (with a pong echoing its
   * payload) is terminated. Default 30000.
   */
  heartbeatInterval?: number
  /** Largest client frame in bytes; larger ones close the socket with 1009. Default 16384. */
  maxPayload?: number
  /** PoVs one socket may watch at once. Default 100. */
  maxSubscriptions?: number
  /** Client messages per socket per window, or `false`. Default `{ max: 200, timeWindow: 10000 }`. */
  rateLimit?: RateLimitOptions | false
  /**
   * Bytes queued to one socket before it counts as too slow and is closed with 4008: everything counts, the answers to
   * its own requests included (a resume's replay is paced by its reading instead). Default 1 MiB.
   */
  maxBufferedBytes?: number
  /**
   * Per-PoV replay window, or `false`. Default `{ size: 100, ttl: 600000, maxBytes: 1048576, maxTotalBytes: 134217728 }`
   * (100 activities, 10 minutes, 1 MiB per PoV, 128 MiB for all PoVs of the instance; the byte bounds apply to the
   * in-process broker).
   */
  history?: Partial<HistoryOptions> | false
  /** Where activities travel between instances. Default: in-process (one instance). */
  broker?: Broker
  /** Who watches each PoV, their activity status, and typing indicators: `true` or settings. Default `false`. */
  presence?: boolean | PresenceOptions
  /**
   * Per-user read marks per PoV, unread counts and `read` events. Default `false`. Needs a broker that stores read
   * marks: the default one does, and so does `createRedisBroker`.
   */
  readReceipts?: boolean
  /**
   * Milliseconds between re-checks of each socket's subscriptions with `authorizeSubscription` (refused ones end with
   * `unsubscribed`, `reason: 'revoked'`), or `false` for none. Each socket's first re-check comes at a random point of
   * its first interval, so sockets are not re-checked all at once. Default `false`.
   */
  reauthorizeInterval?: number | false
  /**
   * Milliseconds `authorizeSubscription` may take before its answer counts as a refusal (a `subscribe` is answered
   * `FORBIDDEN`, as when it throws) and the socket's other messages move on. Default 10000.
   */
  authorizeTimeout?: number
  /**
   * Sockets one user may hold on one instance; one more is refused at the upgrade with HTTP 429
   * (`POV_REALTIME_TOO_MANY_SOCKETS`) before it opens. Default 32.
   */
  maxSocketsPerUser?: number
}

/** The `presence` option with its defaults filled in. */
export interface ResolvedPresenceOptions {
  readonly info: (user: PovRealtimeUser) => Record<string, unknown> | Promise<Record<string, unknown>>
  readonly typingTimeout: number
}

/** The options with every default filled in and every value checked. */
export interface ResolvedOptions {
  readonly secret: string
  readonly cookieName: string
  readonly tokenRoute: string
  readonly wsRoute: string
  readonly tokenLifetimeMs: number
  readonly verifyAccessToken: PovRealtimeOptions['verifyAccessToken']
  readonly authorizeSubscription: PovRealtimeOptions['authorizeSubscription']
  readonly requestDecorators: readonly string[]
  readonly isOriginAllowed: ((origin: string) => boolean) | undefined
  readonly heartbeatInterval: number
  readonly maxPayload: number
  readonly maxSubscriptions: number
  readonly rateLimit: RateLimitOptions | false
  readonly maxBufferedBytes: number
  readonly history: ResolvedHistoryOptions | false
  readonly broker: Broker | undefined
  readonly presence: ResolvedPresenceOptions | false
  readonly readReceipts: boolean
  readonly reauthorizeInterval: number | false
  readonly authorizeTimeout: number
  readonly maxSocketsPerUser: number
}

/** The `history` option with every bound filled in. */
export type ResolvedHistoryOptions = Required<HistoryOptions>

export const DEFAULTS = {
  cookieName: 'accessToken',
  tokenRoute: '/api/auth/ws-token',
  wsRoute: '/ws',
  tokenExpiresIn: '1h',
  heartbeatInterval: 30_000,
  maxPayload: 16 * 1024,
  maxSubscriptions: 100,
  rateLimit: { max: 200, timeWindow: 10_000 },
  maxBufferedBytes: 1024 * 1024,
  history: { size: 100, ttl: 10 * 60_000, maxBytes: 1024 * 1024, maxTotalBytes: 128 * 1024 * 1024 },
  presence: { typingTimeout: 5000 },
  reauthorizeInterval: false,
  authorizeTimeout: 10_000,
  maxSocketsPerUser: 32
} as const

const noPublicInfo = (): Record<string, unknown> => ({})

/** The longest delay a Node timer takes; a token may outlive it. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

function fail (message: string): never {
  throw new InvalidOptionError(message)
}

function positiveInteger (name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    fail(`${name} must be a positive integer, got ${JSON.stringify(value)}`)
  }
  return value
}

function optionalFunction<T> (name: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') fail(`${name} must be a function`)
  return value
}

function route (name: string, value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/')) fail(`${name} must be a path starting with '/'`)
  return value
}

function tokenLifetime (value: number | string): number {
  const ms = typeof value === 'number' ? value * 1000 : parseDuration(value)
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1000) {
    fail(`tokenExpiresIn must be at least one second (seconds as a number, or a string such as '1h'), got ${JSON.stringify(value)}`)
  }
  return ms
}

function originCheck (value: PovRealtimeOptions['allowedOrigins']): ResolvedOptions['isOriginAllowed'] {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value
  if (!Array.isArray(value) || !value.every((origin) => typeof origin === 'string')) {
    fail('allowedOrigins must be an array of origins (such as "https://app.example.com") or a function')
  }
  const allowed = new Set(value)
  return (origin) => allowed.has(origin)
}

/** What the view of the upgrade request holds itself: a decoration may not take these names. */
const VIEW_FIELDS = new Set(['id', 'ip', 'url', 'headers'])

function requestDecorators (value: unknown): readonly string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((name) => typeof name === 'string' && name.length > 0)) {
    fail('requestDecorators must be an array of request decoration names')
  }
  const clash = value.find((name: string) => VIEW_FIELDS.has(name))
  if (clash !== undefined) fail(`requestDecorators cannot name '${clash}': the view of the upgrade request has it already`)
  return Object.freeze([...new Set(value as string[])])
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function rateLimit (value: PovRealtimeOptions['rateLimit']): RateLimitOptions | false {
  if (value === false) return false
  if (value !== undefined && !isPlainObject(value)) fail('rateLimit must be { max, timeWindow } or false')
  const { max = DEFAULTS.rateLimit.max, timeWindow = DEFAULTS.rateLimit.timeWindow } = value ?? {}
  return { max: positiveInteger('rateLimit.max', max), timeWindow: positiveInteger('rateLimit.timeWindow', timeWindow) }
}

function history (value: PovRealtimeOptions['history']): ResolvedHistoryOptions | false {
  if (value === false) return false
  if (value !== undefined && !isPlainObject(value)) fail('history must be { size, ttl, maxBytes, maxTotalBytes } or false')
  const {
    size = DEFAULTS.history.size,
    ttl = DEFAULTS.history.ttl,
    maxBytes = DEFAULTS.history.maxBytes,
    maxTotalBytes = DEFAULTS.history.maxTotalBytes
  } = value ?? {}
  return {
    size: positiveInteger('history.size', size),
    ttl: positiveInteger('history.ttl', ttl),
    maxBytes: positiveInteger('history.maxBytes', maxBytes),
    maxTotalBytes: positiveInteger('history.maxTotalBytes', maxTotalBytes)
  }
}

function presence (value: PovRealtimeOptions['presence']): ResolvedPresenceOptions | false {
  if (value === undefined || value === false) return false
  if (value !== true && !isPlainObject(value)) fail('presence must be true, false or { info, typingTimeout }')
  const settings: PresenceOptions = value === true ? {} : value
  const { info = noPublicInfo, typingTimeout = DEFAULTS.presence.typingTimeout } = settings
  return {
    info: optionalFunction('presence.info', info),
    typingTimeout: positiveInteger('presence.typingTimeout', typingTimeout)
  }
}

function readReceipts (value: unknown): boolean {
  if (value !== undefined && typeof value !== 'boolean') fail('readReceipts must be true or false')
  return value === true
}

/** A delay a Node timer can wait (longer ones would fire at once). */
function timerDelay (name: string, value: unknown): number {
  const ms = positiveInteger(name, value)
  if (ms > MAX_TIMER_DELAY) fail(`${name} must be at most ${MAX_TIMER_DELAY} ms, got ${ms}`)
  return ms
}

function reauthorizeInterval (value: unknown): number | false {
  return value === false ? false : timerDelay('reauthorizeInterval', value)
}

function broker (value: unknown): Broker | undefined {
  if (value === undefined) return undefined
  if (!isPlainObject(value)) fail('broker must be a broker object such as createRedisBroker(...)')
  const candidate = value as Partial<Broker>
  for (const method of ['start', 'publish', 'watch', 'unwatch', 'replay', 'close'] as const) {
    if (typeof candidate[method] !== 'function') fail(`broker must implement ${method}() (see createRedisBroker)`)
  }
  return value as unknown as Broker
}

function isReadMarkStore (value: unknown): boolean {
  if (!isPlainObject(value)) return false
  const store = value as Partial<Record<keyof ReadMarkStore, unknown>>
  return (['start', 'markRead', 'reads', 'markOf', 'unreadAfter'] as const).every((method) => typeof store[method] === 'function')
}

/**
 * With `presence` on, a custom broker (one for several instances) must carry presence between them: the in-process
 * default needs no relay, since one instance holds every member.
 */
function presenceRelay (relay: unknown): void {
  if (relay === undefined) {
    fail('presence needs a broker with a presence relay (broker.presence, as createRedisBroker has); this broker has none')
  }
  if (!isPlainObject(relay)) fail('broker.presence must be a presence relay (see PresenceRelay)')
  const candidate = relay as Partial<PresenceRelay>
  if (typeof candidate.instanceId !== 'string') fail('broker.presence must have an instanceId string (see PresenceRelay)')
  for (const method of ['start', 'announce', 'typing', 'members'] as const) {
    if (typeof candidate[method] !== 'function') fail(`broker.presence must implement ${method}() (see PresenceRelay)`)
  }
}

/** Checks the options once, at registration, and fills in the defaults. Throws `POV_REALTIME_INVALID_OPTION`. */
export function resolveOptions (options: PovRealtimeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') fail('options must be an object with at least { secret }')
  const {
    secret,
    cookieName = DEFAULTS.cookieName,
    tokenRoute = DEFAULTS.tokenRoute,
    wsRoute = DEFAULTS.wsRoute,
    tokenExpiresIn = DEFAULTS.tokenExpiresIn,
    heartbeatInterval = DEFAULTS.heartbeatInterval,
    maxPayload = DEFAULTS.maxPayload,
    maxSubscriptions = DEFAULTS.maxSubscriptions,
    maxBufferedBytes = DEFAULTS.maxBufferedBytes,
    reauthorizeInterval: reauthorizeEvery = DEFAULTS.reauthorizeInterval,
    authorizeTimeout = DEFAULTS.authorizeTimeout,
    maxSocketsPerUser = DEFAULTS.maxSocketsPerUser
  } = options
  if (typeof secret !== 'string' || secret.length === 0) fail('secret is required: a non-empty string')
  if (typeof cookieName !== 'string' || cookieName.length === 0) fail('cookieName must be a non-empty string')
  const resolved: ResolvedOptions = {
    secret,
    cookieName,
    tokenRoute: route('tokenRoute', tokenRoute),
    wsRoute: route('wsRoute', wsRoute),
    tokenLifetimeMs: tokenLifetime(tokenExpiresIn),
    verifyAccessToken: optionalFunction('verifyAccessToken', options.verifyAccessToken),
    authorizeSubscription: optionalFunction('authorizeSubscription', options.authorizeSubscription),
    requestDecorators: requestDecorators(options.requestDecorators),
    isOriginAllowed: originCheck(options.allowedOrigins),
    heartbeatInterval: positiveInteger('heartbeatInterval', heartbeatInterval),
    maxPayload: positiveInteger('maxPayload', maxPayload),
    maxSubscriptions: positiveInteger('maxSubscriptions', maxSubscriptions),
    rateLimit: rateLimit(options.rateLimit),
    maxBufferedBytes: positiveInteger('maxBufferedBytes', maxBufferedBytes),
    history: history(options.history),
    broker: broker(options.broker),
    presence: presence(options.presence),
    readReceipts: readReceipts(options.readReceipts),
    reauthorizeInterval: reauthorizeInterval(reauthorizeEvery),
    authorizeTimeout: timerDelay('authorizeTimeout', authorizeTimeout),
    maxSocketsPerUser: positiveInteger('maxSocketsPerUser', maxSocketsPerUser)
  }
  if (resolved.tokenRoute === resolved.wsRoute) fail('tokenRoute and wsRoute must differ')
  if (resolved.readReceipts && resolved.broker && !isReadMarkStore(resolved.broker.readMarks)) {
    fail('readReceipts needs a broker that stores read marks (a readMarks store, as createRedisBroker has); this broker has none')
  }
  if (resolved.presence && resolved.broker) presenceRelay(resolved.broker.presence)
  return resolved
}
