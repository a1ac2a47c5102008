/**
 * One connected socket. The session reads the client's frames, checks them (size, rate, shape) and routes each
 * message to the part that owns it: its subscriptions (`socket-subscriptions.ts`), its credential
 * (`auth/socket-credential.ts`), presence and read receipts (each feature's `*-messages.ts`). Everything the socket is
 * sent goes through its writer (`socket-writer.ts`). The session itself keeps only liveness (ping/pong), the timer of
 * its re-checks (`reauthorizeInterval`), its revocation and the socket's close. Messages are handled one at a time in
 * arrival order (a `subscribe` may wait on `authorizeSubscription` or a replay paced by the client's reading), so
 * answers come in the order their requests were sent; the requests waiting meanwhile are bounded like what is queued
 * to the socket. Revocations and re-checks come from outside that queue.
 *
 * Liveness: each ping carries random bytes, and only a pong that echoes them counts. A peer answers it only once it
 * has read everything queued before the ping, so a peer that reads nothing cannot keep itself alive with pongs of its
 * own; browsers and ws answer pings with their payload by themselves.
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { CloseCode, ErrorCode } from '../../types/wire-constants.js'
import type { ClientMessage, ErrorMessage, ServerMessage } from '../../types/messages.js'
import type { Feature } from '../../types/schemas.js'
import { INVALID_MESSAGE_STREAK_LIMIT, PING_PAYLOAD_BYTES } from '../constants.js'
import type { PovRealtimeUser, RateLimitOptions, UpgradeRequestView } from '../options.js'
import type { StatsCounters } from '../stats.js'
import type { ExpirySchedule } from '../auth/expiry-schedule.js'
import { SocketCredential, type CredentialSession } from '../auth/socket-credential.js'
import type { SocketIdentity, TokenService } from '../auth/tokens.js'
import type { PresenceFeature } from '../presence/presence-feature.js'
import { PresenceMessages, type PresenceSession } from '../presence/presence-messages.js'
import type { ReadReceiptsFeature } from '../read-receipts/read-receipts-feature.js'
import { ReadReceiptsMessages, type ReadReceiptsSession } from '../read-receipts/read-receipts-messages.js'
import { closeCodeOfFrameError } from './frame-errors.js'
import { parseClientFrame } from './message-parser.js'
import { rateClock, rateVerdict, type RateVerdict } from './rate-limiter.js'
import { SocketSubscriptions, type SubscribingSession, type SubscriptionHost } from './socket-subscriptions.js'
import { SocketLimitTrips } from './socket-limit-trips.js'
import { SocketWriter, type WriterSettings } from './socket-writer.js'

/** What a session needs from the hub that owns it. */
export interface SessionHost extends SubscriptionHost {
  readonly stats: StatsCounters
  /** What the writers of every socket share. */
  readonly writerSettings: WriterSettings
  readonly tokens: TokenService
  /** Every socket's token expiry, on one timer. */
  readonly expiries: ExpirySchedule
  readonly enabledFeatures: ReadonlySet<Feature>
  /** `presence` on: the instance's members, statuses and typing. */
  readonly presence: PresenceFeature | undefined
  /** The read receipts, when `readReceipts` is on. */
  readonly readReceipts: ReadReceiptsFeature | undefined
  /** The session's socket has closed. */
  forget (session: SocketSession): void
}

/** A socket the upgrade's checks let through, and what its session keeps of the upgrade (`upgrade-handover.ts`). */
export interface SocketOpening {
  readonly ws: WebSocket
  /** The TCP connection under ws (the upgrade request's socket). */
  readonly connection: Duplex
  /** The upgrade request's logger (its lines carry the request id). */
  readonly log: FastifyBaseLogger
  /** What `authorizeSubscription` is told of the upgrade request: kept only when that option is set. */
  readonly upgrade: UpgradeRequestView | undefined
  readonly identity: SocketIdentity
}

/**
 * The session of each open socket, for the socket listeners every session shares: four closures per socket and
 * their context cost about 250 bytes of an idle connection, an entry here about 30. Set before the listeners are
 * added, never removed (the entry goes with the socket).
 */
const sessionOf = new WeakMap<WebSocket, SocketSession>()

/** A request waiting while an earlier one is handled, and its size on the wire. */
interface QueuedRequest {
  readonly message: ClientMessage
  readonly bytes: number
}

export class SocketSession implements SubscribingSession, CredentialSession, PresenceSession, ReadReceiptsSession {
  static readonly #onMessage = function (this: WebSocket, data: Buffer, isBinary: boolean): void {
    sessionOf.get(this)!.#onFrame(data, isBinary)
  }

  static readonly #onPong = function (this: WebSocket, data: Buffer): void {
    const session = sessionOf.get(this)!
    if (session.#echoesPing(data)) session.#answeredPing = true
  }

  static readonly #onClose = function (this: WebSocket): void {
    sessionOf.get(this)!.#onClosed()
  }

  static readonly #onError = function (this: WebSocket, err: Error): void {
    sessionOf.get(this)!.#onProtocolError(err)
  }

  readonly upgrade: UpgradeRequestView | undefined
  readonly log: FastifyBaseLogger
  readonly #ws: WebSocket
  readonly #writer: SocketWriter
  readonly #host: SessionHost
  readonly #credential: SocketCredential
  readonly #subscriptions: SocketSubscriptions
  /** The features' side of this socket, when they are on (the parser refuses their messages while they are off). */
  readonly presence: PresenceMessages | undefined
  readonly readReceipts: ReadReceiptsMessages | undefined
  /** This socket's fairness limits: made at the first trip (most sockets never trip one). */
  #limits: SocketLimitTrips | undefined
  /** Requests waiting while an earlier one is handled: an array only while messages are (an idle socket has none). */
  #queue: QueuedRequest[] | undefined
  #queuedBytes = 0
  #draining = false
  #invalidStreak = 0
  /** `rateLimit`'s window: when it started (`rateClock`), and the messages counted in it (0: none yet). */
  #windowStart = 0
  #windowMessages = 0
  #answeredPing = true
  /**
   * What the last ping carried, the pong that echoes it being the answer (see the header): `PING_PAYLOAD_BYTES` of its
   * heartbeat slice's random block from `#pingOffset`. The block is shared by the slice's sockets, where a view of
   * their own (a `Buffer`) cost about 100 bytes of each idle connection.
   */
  #pingBlock: Buffer | undefined
  #pingOffset = 0
  /** Revoked as a whole: closing with 4003, nothing more is handled. */
  #revoked = false
  /** The `reauthorizeInterval` timer (a timeout for the first re-check, then an interval). */
  #recheckTimer: NodeJS.Timeout | undefined
  #rechecking = false

  constructor ({ ws, connection, log, upgrade, identity }: SocketOpening, host: SessionHost) {
    this.upgrade = upgrade
    this.log = log
    this.#ws = ws
    this.#host = host
    this.#writer = new SocketWriter(ws, connection, host.writerSettings, this)
    this.#credential = new SocketCredential(identity, this)
    this.presence = host.presence && new PresenceMessages(host.presence, this)
    this.readReceipts = host.readReceipts && new ReadReceiptsMessages(host.readReceipts, this)
    this.#subscriptions = new SocketSubscriptions(host, this, this.#writer)
    this.#scheduleRechecks()
    sessionOf.set(ws, this)
    ws.on('message', SocketSession.#onMessage)
    ws.on('pong', SocketSession.#onPong)
    ws.on('close', SocketSession.#onClose)
    ws.on('error', SocketSession.#onError)
  }

  get user (): PovRealtimeUser {
    return this.#credential.user
  }

  get userId (): string {
    return this.#credential.user.userId
  }

  get tokens (): TokenService {
    return this.#host.tokens
  }

  get expiries (): ExpirySchedule {
    return this.#host.expiries
  }

  /** This socket's fairness limits: counted, and logged once each. */
  get limits (): SocketLimitTrips {
    return (this.#limits ??= new SocketLimitTrips(this.#host.stats, this.log, this.userId))
  }

  /**
   * One heartbeat tick: terminate the peer if it has not answered the previous ping, else ping it with the
   * `PING_PAYLOAD_BYTES` of `block` (one random block per slice of the heartbeat) from `offset`.
   */
  heartbeat (block: Buffer, offset: number): void {
    if (this.#writer.closed) return
    if (!this.#answeredPing) {
      this.log.info({ userId: this.userId }, 'pov-realtime: peer missed its pong; terminating')
      this.#ws.terminate()
      return
    }
    this.#answeredPing = false
    this.#pingBlock = block
    this.#pingOffset = offset
    this.#writer.ping(block.subarray(offset, offset + PING_PAYLOAD_BYTES))
  }

  #echoesPing (data: Buffer): boolean {
    const block = this.#pingBlock
    const offset = this.#pingOffset
    return block !== undefined && data.length === PING_PAYLOAD_BYTES &&
      block.compare(data, 0, PING_PAYLOAD_BYTES, offset, offset + PING_PAYLOAD_BYTES) === 0
  }

  /** Closes with `code` (counted in stats), unless already closing. */
  close (code: CloseCode, reason: string): void {
    this.#writer.close(code, reason)
  }

  /**
   * `fastify.povRealtime.revoke` reached this socket: its subscription to `povId` ends (`unsubscribed`, `reason:
   * 'revoked'`), or, without `povId`, every subscription ends and the socket is closed with 4003. Synchronous: nothing
   * of a revoked PoV is written to the socket once this returns.
   */
  revoke (povId?: string): void {
    if (povId !== undefined) return this.#subscriptions.revoke(povId)
    if (this.#revoked || this.#writer.closed) return
    this.#revoked = true
    this.#queue = undefined
    clearTimeout(this.#recheckTimer)
    this.#subscriptions.revokeAll()
    this.log.info({ userId: this.userId }, 'pov-realtime: access revoked; closing the socket')
    this.close(CloseCode.FORBIDDEN, 'access revoked')
  }

  /** An in-band `auth` was accepted: every subscription is checked again, for the refreshed user. */
  refreshed (): void {
    this.#subscriptions.reauthorize().catch((err: unknown) => this.#fault(err))
  }

  /** Cuts the connection without a close handshake (shutdown past its grace period). */
  terminate (): void {
    this.#ws.terminate()
  }

  // ---- the features' view of the session ---------------------------------------------------

  watches (povId: string): boolean {
    return this.#subscriptions.watches(povId)
  }

  answer (message: ServerMessage): void {
    this.#writer.answer(message)
  }

  sendEphemeral (payload: Buffer): boolean {
    return this.#writer.sendEphemeral(payload)
  }

  sendError (code: ErrorCode, message: string, povId?: string): void {
    const error: ErrorMessage = { type: 'error', code, message }
    if (povId !== undefined) error.povId = povId
    this.#reject(error)
  }

  // ---- incoming ------------------------------------------------------------------------------

  #onFrame (data: Buffer, isBinary: boolean): void {
    if (this.#writer.closed || this.#revoked) return
    // ws enforces maxPayload when this plugin registered @fastify/websocket; this covers an app-registered one.
    if (data.length > this.#host.options.maxPayload) {
      this.close(CloseCode.MESSAGE_TOO_BIG, 'message too big')
      return
    }
    const { rateLimit } = this.#host.options
    if (rateLimit) {
      const verdict = this.#countMessage(rateLimit)
      if (verdict === 'warn') return this.sendError(ErrorCode.RATE_LIMITED, 'too many messages; slow down')
      if (verdict === 'drop') return
      if (verdict === 'abusive') return this.close(CloseCode.TOO_MANY, 'rate limit exceeded')
    }
    const parsed = parseClientFrame(data, isBinary, this.#host.enabledFeatures)
    if (!parsed.ok) {
      this.#reject(parsed.error)
      // A message of a feature that is off is well-formed: it does not count as abuse.
      if (parsed.error.code === ErrorCode.INVALID_MESSAGE && ++this.#invalidStreak >= INVALID_MESSAGE_STREAK_LIMIT) {
        this.close(CloseCode.POLICY_VIOLATION, 'too many invalid messages')
      }
      return
    }
    this.#invalidStreak = 0
    this.#queue ??= []
    this.#queue.push({ message: parsed.message, bytes: data.length })
    this.#queuedBytes += data.length
    // Requests pile up only while an earlier one waits (often on the client's own reading): bounded as its queue is.
    if (this.#queuedBytes > this.#host.options.maxBufferedBytes) return this.#writer.closeSlowConsumer()
    if (!this.#draining) this.#drain() // never rejects: faults close the socket with 1011
  }

  /** The rate limit's verdict on one more message, counted in this socket's current window (`rate-limiter.ts`). */
  #countMessage ({ max, timeWindow }: RateLimitOptions): RateVerdict {
    const now = rateClock()
    if (this.#windowMessages === 0 || now - this.#windowStart >= timeWindow) {
      this.#windowStart = now
      this.#windowMessages = 0
    }
    return rateVerdict(++this.#windowMessages, max)
  }

  async #drain (): Promise<void> {
    this.#draining = true
    try {
      let next: QueuedRequest | undefined
      while (!this.#writer.closed && (next = this.#queue?.shift()) !== undefined) {
        const { message, bytes } = next
        this.#queuedBytes -= bytes
        const pending = this.#handle(message)
        if (pending) await pending
      }
    } catch (err) {
      this.#fault(err)
    } finally {
      this.#draining = false
      if (this.#queue?.length === 0) this.#queue = undefined
    }
  }

  #fault (err: unknown): void {
    this.log.error({ err }, 'pov-realtime: unexpected fault while handling a message')
    this.close(CloseCode.INTERNAL_ERROR, 'internal error')
  }

  /** Routes one message; returns a promise only when the handling waits on something. */
  #handle (message: ClientMessage): Promise<void> | undefined {
    switch (message.type) {
      case 'ping':
        this.#writer.answer({ type: 'pong' })
        return undefined
      case 'subscribe':
        return this.#subscriptions.subscribe(message)
      case 'unsubscribe':
        this.#subscriptions.unsubscribe(message.povId)
        return undefined
      case 'auth':
        this.#credential.refresh(message.token)
        return undefined
      case 'status':
      case 'typing':
        this.presence?.received(message)
        return undefined
      case 'read':
      case 'reads':
        return this.readReceipts?.received(message)
    }
  }

  #reject (error: ErrorMessage): void {
    this.#host.stats.countRejected(error.code)
    this.#writer.answer(error)
  }

  // ---- lifetime -----------------------------------------------------------------------------

  /**
   * ws itself closes the socket on a frame it cannot accept (too big: 1009, not UTF-8: 1007, broken framing: 1002)
   * and reports it here: count the close it sent. These are the client's faults, so they are logged at info. Any
   * other error is logged as one and the socket cut, as @fastify/websocket's error handler (which this listener
   * replaces, see `upgrade-handover.ts`) did.
   */
  #onProtocolError (err: Error & { code?: string }): void {
    const code = closeCodeOfFrameError(err)
    if (code === undefined) {
      this.log.error({ err }, 'pov-realtime: socket error')
      this.#ws.terminate()
      return
    }
    this.#writer.countClose(code)
    this.log.info({ code, reason: err.message }, 'pov-realtime: closed a socket that sent an invalid frame')
  }

  /**
   * `reauthorizeInterval`: the socket's subscriptions are checked again every interval, the first time at a random
   * point of the first one, so that sockets opened together (a reconnect storm) are not re-checked together. Nothing
   * without `authorizeSubscription` (every authenticated user may watch every PoV).
   */
  #scheduleRechecks (): void {
    const { reauthorizeInterval: interval, authorizeSubscription } = this.#host.options
    if (interval === false || !authorizeSubscription) return
    const recheck = () => {
      if (this.#rechecking) return // the previous one still waits on the app (at most authorizeTimeout)
      this.#rechecking = true
      this.#subscriptions.reauthorize()
        .catch((err: unknown) => this.#fault(err))
        .finally(() => { this.#rechecking = false })
    }
    this.#recheckTimer = setTimeout(() => {
      recheck()
      this.#recheckTimer = setInterval(recheck, interval).unref()
    }, Math.floor(Math.random() * interval)).unref()
  }

  #onClosed (): void {
    clearTimeout(this.#recheckTimer)
    this.#writer.end()
    this.#credential.stop()
    this.#queue = undefined
    this.#queuedBytes = 0
    this.presence?.close()
    this.#subscriptions.releaseAll()
    this.#host.forget(this)
  }
}
