/**
 * The life of the connection, as an explicit state machine:
 *
 * ```
 *            start()                  token               open
 *   idle ──────────────▶ authenticating ────▶ connecting ──────▶ open
 *     ▲  (a cached token     │    │              │                │ lost, no pong,
 *     │   skips it)          │    │ unreachable  │ refused, lost  │ token expired
 *     │ stop()               │    ▼              ▼                ▼
 *     └──── (any)            │   waiting ◀───────┴────────────────┘
 *                            │ 401 │ backoff with jitter; `online` or reconnect() cuts it short
 *                            ▼     └───────────▶ authenticating / connecting
 *                       auth-failed  (also: 401 while refreshing); only reconnect() leaves it
 *
 *   open ── closed with 4003 (access revoked) ──▶ revoked   only reconnect() (or stop()) leaves it
 * ```
 *
 * A 4003 close is a revocation unless it answers the machine's own in-band `auth` carrying another user's token (the
 * server refuses an identity change with 4003 too): then the new user's session is what comes next, so it reconnects.
  *
 * At most one connection exists at a time: a new attempt starts only after the previous one has been closed and
 * detached. Every asynchronous result is checked against the attempt it belongs to, so a late answer of an
 * abandoned attempt changes nothing. It also keeps the token fresh (in-band `auth` before expiry) and the connection
 * honest (application-level ping). It knows nothing of PoVs: that is the client's job.
 */
import { BEARER_PROTOCOL_PREFIX, CloseCode, ErrorCode, SUBPROTOCOL } from '../../../types/wire-constants.js'
import type { AuthenticatedMessage, ServerMessage } from '../../../types/messages.js'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { HealthMonitor } from './health-monitor.js'
import type { NetworkSignals } from './network-signals.js'
import { MAX_TIMER_DELAY, type Timers } from './timers.js'
import { userIdOfToken } from './token-claims.js'
import { AuthError, type SocketToken, type TokenProvider } from './token-source.js'
import type { Connection, Transport } from './transport.js'

/** Where the machine is; see the diagram in `connection-machine.ts`. */
export type ConnectionState = 'idle' | 'authenticating' | 'connecting' | 'open' | 'waiting' | 'auth-failed' | 'revoked'

/** What components show: `'disconnected'` until the first open, `'reconnected'` after any later one. */
export type ConnectionStatus = 'connected' | 'disconnected' | 'reconnected'

const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['authenticating', 'connecting'],
  authenticating: ['connecting', 'waiting', 'auth-failed', 'idle'],
  // reconnect() while connecting abandons the attempt for a new one
  connecting: ['open', 'waiting', 'idle', 'authenticating', 'connecting'],
  open: ['waiting', 'auth-failed', 'idle', 'authenticating', 'connecting', 'revoked'],
  waiting: ['authenticating', 'connecting', 'idle'],
  'auth-failed': ['authenticating', 'connecting', 'idle'],
  revoked: ['authenticating', 'connecting', 'idle']
}

/** A connection open at least this long was healthy: losing it restarts the backoff from its first step. */
const STABLE_CONNECTION_MS = 5000

const PING = JSON.stringify({ type: 'ping' })

export interface ConnectionMachineOptions {
  /** The socket URL, resolved when a connection starts (never at construction: no `location` on the server). */
  resolveUrl: () => string
  transport: Transport
  tokens: TokenProvider
  timers: Timers
  random: () => number
  /** Where the `online` event comes from, or `null`. */
  network: NetworkSignals | null
  backoff: BackoffOptions
  /** ms between application-level pings, or `false` for none. */
  pingInterval: number | false
  /** ms of silence after a ping before the connection counts as dead. */
  pongTimeout: number
  /** ms a connection may take to open before the attempt is abandoned. */
  connectTimeout: number
}

/** What the machine tells its owner. */
export interface ConnectionListener {
  /** A connection is about to be made with `token` (so the owner may learn whose session it is before it opens). */
  connecting (token: SocketToken): void
  /** A connection opened; `reconnect` is true after the first of this session. */
  opened (reconnect: boolean): void
  /** A server message, parsed; never `pong`, nor the answers to the machine's own `auth`. */
  message (message: ServerMessage): void
  /** The state (or the auth error) changed. */
  changed (): void
}

/** One connection attempt and what belongs to it. */
class Link {
  connection: Connection | undefined
  token: SocketToken
  openedAt: number | undefined
  connectTimer: unknown
  refreshTimer: unknown
  health: HealthMonitor | undefined
  /** The token sent in-band, until the server answers `authenticated`. */
  pendingToken: SocketToken | undefined

  constructor (token: SocketToken) {
    this.token = token
  }
}

export class ConnectionMachine {
  readonly #options: ConnectionMachineOptions
  readonly #listener: ConnectionListener
  #state: ConnectionState = 'idle'
  #hasOpened = false
  #reconnected = false
  #authError: AuthError | null = null
  #attempts = 0
  #link: Link | undefined
  #retryTimer: unknown
  /** Bumped by every new attempt and by stop(): results of an older one are ignored. */
  #epoch = 0
  #stopListening: (() => void) | undefined

  constructor (options: ConnectionMachineOptions, listener: ConnectionListener) {
    this.#options = options
    this.#listener = listener
  }

  get state (): ConnectionState {
    return this.#state
  }

  get status (): ConnectionStatus {
    if (this.#state !== 'open') return 'disconnected'
    return this.#reconnected ? 'reconnected' : 'connected'
  }

  /** Why the machine stopped trying, when it is `auth-failed`. */
  get authError (): AuthError | null {
    return this.#authError
  }

  /** Starts a session (nothing when one is running). */
  start (): void {
    if (this.#state !== 'idle') return
    this.#hasOpened = false
    this.#reconnected = false
    this.#attempts = 0
    this.#authError = null
    this.#stopListening = this.#options.network?.onOnline(() => this.#onOnline())
    this.#connect()
  }

  /** Ends the session: closes the connection, cancels every timer. */
  stop (): void {
    if (this.#state === 'idle') return
    this.#epoch++
    this.#clearRetry()
    this.#stopListening?.()
    this.#stopListening = undefined
    this.#dropLink(1000, 'client stopped')
    this.#enter('idle')
  }

  /**
   * Connects now: cuts a backoff wait short, leaves `auth-failed` (after the user signed in again) or `revoked`, or
   * replaces the current connection. Nothing when idle or already fetching a token.
   */
  reconnect (): void {
    switch (this.#state) {
      case 'idle':
      case 'authenticating':
        return
      case 'auth-failed':
        this.#authError = null
        break
      case 'revoked':
        break
      case 'waiting':
        this.#clearRetry()
        break
      case 'connecting':
      case 'open':
        this.#dropLink(1000, 'reconnecting')
        break
    }
    this.#connect()
  }

  /** Sends a text frame if a connection is open; false otherwise. */
  send (data: string): boolean {
    const connection = this.#link?.connection
    if (this.#state !== 'open' || !connection) return false
    connection.send(data)
    return true
  }

  // ---- the steps ----------------------------------------------------------------------------

  #connect (): void {
    const epoch = ++this.#epoch
    const token = this.#options.tokens.usable()
    if (token) return this.#open(token)
    this.#enter('authenticating')
    this.#options.tokens.fetch().then(
      (fresh) => { if (epoch === this.#epoch) this.#open(fresh) },
      (err: unknown) => {
        if (epoch !== this.#epoch) return
        if (err instanceof AuthError) this.#failAuth(err)
        else this.#retryLater()
      })
  }

  #open (token: SocketToken): void {
    this.#enter('connecting')
    this.#listener.connecting(token)
    const link = new Link(token)
    let connection: Connection
    try {
      connection = this.#options.transport.connect(this.#options.resolveUrl(), [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + token.token])
    } catch {
      // A malformed URL or a missing WebSocket: retried with backoff like any failed attempt.
      return this.#retryLater()
    }
    this.#link = link
    link.connection = connection
    link.connectTimer = this.#options.timers.setTimeout(() => this.#lose(link), this.#options.connectTimeout)
    connection.listen({
      open: () => this.#onOpen(link),
      message: (data) => this.#onData(link, data),
      close: (code) => { if (link === this.#link) this.#lose(link, code) }
    })
  }

  #onOpen (link: Link): void {
    if (link !== this.#link) return
    this.#options.timers.clearTimeout(link.connectTimer)
    link.openedAt = this.#options.timers.now()
    this.#reconnected = this.#hasOpened
    this.#hasOpened = true
    const { pingInterval, pongTimeout, timers } = this.#options
    if (pingInterval !== false) {
      link.health = new HealthMonitor({
        pingInterval,
        pongTimeout,
        timers,
        sendPing: () => link.connection?.send(PING),
        onDead: () => { if (link === this.#link) this.#lose(link) }
      })
    }
    this.#scheduleRefresh(link)
    this.#enter('open')
    this.#listener.opened(this.#reconnected)
  }

  #onData (link: Link, data: string): void {
    if (link !== this.#link) return
    link.health?.received()
    let message: ServerMessage
    try {
      message = JSON.parse(data)
    } catch {
      return
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return
    if (message.type === 'pong') return
    if (message.type === 'authenticated' && link.pendingToken) return this.#onAuthenticated(link, message)
    if (message.type === 'error' && message.code === ErrorCode.INVALID_TOKEN && link.pendingToken) {
      return this.#onRefreshRefused(link)
    }
    this.#listener.message(message)
  }

  /**
   * The connection is gone (closed, refused, timed out, or silent): try again after a backoff delay; unless the server
   * revoked the user's access, which reconnecting would not give back (and trying in a loop would hammer the server).
   */
  #lose (link: Link, code?: number): void {
    const { timers, tokens } = this.#options
    if (code === CloseCode.FORBIDDEN && !this.#refusedIdentityChange(link)) {
      tokens.invalidate()
      this.#dropLink(1000, 'access revoked')
      this.#enter('revoked')
      return
    }
    const wasOpen = link.openedAt !== undefined
    if (wasOpen && timers.now() - link.openedAt! >= STABLE_CONNECTION_MS) this.#attempts = 0
    // A refused upgrade may be the token's fault, and an expired or refused identity surely is.
    if (!wasOpen || code === CloseCode.TOKEN_EXPIRED || code === CloseCode.FORBIDDEN) tokens.invalidate()
    this.#dropLink(1000, 'connection lost')
    this.#retryLater()
  }

  /** Whether the link's pending in-band `auth` carried another user's token (which the server refuses with 4003). */
  #refusedIdentityChange (link: Link): boolean {
    return link.pendingToken !== undefined && userIdOfToken(link.pendingToken.token) !== userIdOfToken(link.token.token)
  }

  #retryLater (): void {
    const { backoff, random, timers } = this.#options
    const delay = backoffDelay(this.#attempts++, backoff, random)
    this.#enter('waiting')
    this.#retryTimer = timers.setTimeout(() => {
      this.#retryTimer = undefined
      this.#connect()
    }, delay)
  }

  #failAuth (err: AuthError): void {
    this.#options.tokens.invalidate()
    this.#dropLink(1000, 'signed out')
    this.#authError = err
    this.#enter('auth-failed')
  }

  #onOnline (): void {
    if (this.#state === 'waiting') this.reconnect()
    else if (this.#state === 'open') this.#link?.health?.checkNow()
  }

  // ---- token refresh ------------------------------------------------------------------------

  #scheduleRefresh (link: Link): void {
    const { timers, tokens } = this.#options
    timers.clearTimeout(link.refreshTimer)
    const at = tokens.refreshAt(link.token)
    if (!Number.isFinite(at)) return
    const delay = at - timers.now()
    link.refreshTimer = timers.setTimeout(() => {
      // Timers cannot wait longer than MAX_TIMER_DELAY: a token that lives longer is looked at again.
      if (timers.now() < at) this.#scheduleRefresh(link)
      else this.#refresh(link)
    }, Math.min(Math.max(0, delay), MAX_TIMER_DELAY))
  }

  #refresh (link: Link): void {
    if (link !== this.#link) return
    this.#options.tokens.fetch().then(
      (token) => {
        if (link !== this.#link) return
        link.pendingToken = token
        link.connection?.send(JSON.stringify({ type: 'auth', token: token.token }))
      },
      (err: unknown) => {
        if (link !== this.#link) return
        if (err instanceof AuthError) return this.#failAuth(err)
        this.#retryRefresh(link)
      })
  }

  #onAuthenticated (link: Link, message: AuthenticatedMessage): void {
    link.token = { token: link.pendingToken!.token, expiresAt: message.expiresAt }
    link.pendingToken = undefined
    this.#scheduleRefresh(link)
  }

  #onRefreshRefused (link: Link): void {
    link.pendingToken = undefined
    this.#options.tokens.invalidate()
    this.#retryRefresh(link)
  }

  /** Tries the refresh again while the current token lasts; if it runs out, the server closes with 4002 and we reconnect. */
  #retryRefresh (link: Link): void {
    const { timers } = this.#options
    const remaining = link.token.expiresAt - timers.now()
    timers.clearTimeout(link.refreshTimer)
    link.refreshTimer = timers.setTimeout(() => this.#refresh(link), Math.min(30_000, Math.max(1000, remaining / 3)))
  }

  // ---- bookkeeping --------------------------------------------------------------------------

  #dropLink (code: number, reason: string): void {
    const link = this.#link
    if (!link) return
    this.#link = undefined
    const { timers } = this.#options
    timers.clearTimeout(link.connectTimer)
    timers.clearTimeout(link.refreshTimer)
    link.health?.stop()
    link.connection?.close(code, reason)
  }

  #clearRetry (): void {
    if (this.#retryTimer === undefined) return
    this.#options.timers.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  #enter (state: ConnectionState): void {
    if (!TRANSITIONS[this.#state].includes(state)) {
      throw new Error(`pov-realtime client: no transition from ${this.#state} to ${state}`)
    }
    this.#state = state
    this.#listener.changed()
  }
}
