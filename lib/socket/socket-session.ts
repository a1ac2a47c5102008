/**
 * One connected socket. The session reads the client's frames, checks them (size, rate, shape) and routes each
 * message to the part that owns it: its subscriptions (`socket-subscriptions.ts`), its credential
 * (`auth/socket-credential.ts`), presence and read receipts (each feature's `*-messages.ts`). Everything the socket is
 * sent goes through its writer (`socket-writer.ts`). The session itself keeps only liveness (ping/pong) and the
 * socket's close. Messages are handled one at a time in arrival order (a `subscribe` may wait on
 * `authorizeSubscription` or a replay), so answers come in the order their requests were sent.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { CloseCode, ErrorCode } from '../../types/wire-constants.js'
import type { ClientMessage, ErrorMessage, ServerMessage } from '../../types/messages.js'
import type { Feature } from '../../types/schemas.js'
import { INVALID_MESSAGE_STREAK_LIMIT } from '../constants.js'
import type { PovRealtimeUser } from '../options.js'
import type { StatsCounters } from '../stats.js'
import { SocketCredential, type CredentialSession } from '../auth/socket-credential.js'
import type { SocketIdentity, TokenService } from '../auth/tokens.js'
import type { PresenceFeature } from '../presence/presence-feature.js'
import { PresenceMessages, type PresenceSession } from '../presence/presence-messages.js'
import type { ReadReceiptsFeature } from '../read-receipts/read-receipts-feature.js'
import { ReadReceiptsMessages, type ReadReceiptsSession } from '../read-receipts/read-receipts-messages.js'
import { closeCodeOfFrameError } from './frame-errors.js'
import { parseClientFrame } from './message-parser.js'
import { MessageRateLimiter } from './rate-limiter.js'
import { SocketSubscriptions, type SubscribingSession, type SubscriptionHost } from './socket-subscriptions.js'
import { SocketLimitTrips } from './socket-limit-trips.js'
import { SocketWriter } from './socket-writer.js'

/** What a session needs from the hub that owns it. */
export interface SessionHost extends SubscriptionHost {
  readonly stats: StatsCounters
  readonly tokens: TokenService
  readonly enabledFeatures: ReadonlySet<Feature>
  /** `presence` on: the instance's members, statuses and typing. */
  readonly presence: PresenceFeature | undefined
  /** The read receipts, when `readReceipts` is on. */
  readonly readReceipts: ReadReceiptsFeature | undefined
  /** The session's socket has closed. */
  forget (session: SocketSession): void
}

export class SocketSession implements SubscribingSession, CredentialSession, PresenceSession, ReadReceiptsSession {
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
  /** This socket's fairness limits: counted, and logged once each. */
  readonly limits: SocketLimitTrips
  readonly #ws: WebSocket
  readonly #writer: SocketWriter
  readonly #host: SessionHost
  readonly #credential: SocketCredential
  readonly #subscriptions: SocketSubscriptions
  /** The features' side of this socket, when they are on (the parser refuses their messages while they are off). */
  readonly #presence: PresenceMessages | undefined
  readonly #readReceipts: ReadReceiptsMessages | undefined
  readonly #limiter: MessageRateLimiter | undefined
  readonly #queue: ClientMessage[] = []
  #draining = false
  #invalidStreak = 0
  #answeredPing = true

  constructor (ws: WebSocket, request: FastifyRequest, identity: SocketIdentity, host: SessionHost) {
    const { options, stats } = host
    this.request = request
    this.log = request.log
    this.#ws = ws
    this.#host = host
    this.limits = new SocketLimitTrips(stats, request.log, identity.user.userId)
    this.#writer = new SocketWriter(ws, request.raw.socket, {
      maxBufferedBytes: options.maxBufferedBytes, stats, log: request.log, userId: identity.user.userId
    })
    this.#credential = new SocketCredential(identity, host.tokens, this)
    this.#presence = host.presence && new PresenceMessages(host.presence, this)
    this.#readReceipts = host.readReceipts && new ReadReceiptsMessages(host.readReceipts, this)
    this.#subscriptions = new SocketSubscriptions(host, this, this.#writer, {
      presence: this.#presence, readReceipts: this.#readReceipts
    })
    this.#limiter = options.rateLimit ? new MessageRateLimiter(options.rateLimit) : undefined
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onFrame(data, isBinary))
    ws.on('pong', () => { this.#answeredPing = true })
    ws.on('close', () => this.#onClosed())
    ws.on('error', (err) => this.#onProtocolError(err))
  }

  get user (): PovRealtimeUser {
    return this.#credential.user
  }

  get userId (): string {
    return this.#credential.user.userId
  }

  /** One heartbeat tick: terminate the peer if it missed the previous ping, else ping it. */
  heartbeat (): void {
    if (this.#writer.closed) return
    if (!this.#answeredPing) {
      this.log.info({ userId: this.userId }, 'pov-realtime: peer missed its pong; terminating')
      this.#ws.terminate()
      return
    }
    this.#answeredPing = false
    this.#writer.ping()
  }

  /** Closes with `code` (counted in stats), unless already closing. */
  close (code: CloseCode, reason: string): void {
    this.#writer.close(code, reason)
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
    if (this.#writer.closed) return
    // ws enforces maxPayload when this plugin registered @fastify/websocket; this covers an app-registered one.
    if (data.length > this.#host.options.maxPayload) {
      this.close(CloseCode.MESSAGE_TOO_BIG, 'message too big')
      return
    }
    if (this.#limiter) {
      const verdict = this.#limiter.hit(Date.now())
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
    this.#queue.push(parsed.message)
    if (!this.#draining) this.#drain() // never rejects: faults close the socket with 1011
  }

  async #drain (): Promise<void> {
    this.#draining = true
    try {
      while (this.#queue.length > 0 && !this.#writer.closed) {
        const pending = this.#handle(this.#queue.shift()!)
        if (pending) await pending
      }
    } catch (err) {
      this.log.error({ err }, 'pov-realtime: unexpected fault while handling a message')
      this.close(CloseCode.INTERNAL_ERROR, 'internal error')
    } finally {
      this.#draining = false
    }
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
        this.#presence?.received(message)
        return undefined
      case 'read':
      case 'reads':
        return this.#readReceipts?.received(message)
    }
  }

  #reject (error: ErrorMessage): void {
    this.#host.stats.countRejected(error.code)
    this.#writer.answer(error)
  }

  // ---- lifetime -----------------------------------------------------------------------------

  /**
   * ws itself closes the socket on a frame it cannot accept (too big: 1009, not UTF-8: 1007, broken framing: 1002)
   * and reports it here: count the close it sent. These are the client's faults, so they are logged at info.
   */
  #onProtocolError (err: Error & { code?: string }): void {
    const code = closeCodeOfFrameError(err)
    if (code === undefined) {
      this.log.warn({ err }, 'pov-realtime: socket error')
      return
    }
    this.#writer.countClose(code)
    this.log.info({ code, reason: err.message }, 'pov-realtime: closed a socket that sent an invalid frame')
  }

  #onClosed (): void {
    this.#writer.end()
    this.#credential.stop()
    this.#queue.length = 0
    this.#presence?.close()
    this.#subscriptions.releaseAll()
    this.#host.forget(this)
  }
}
