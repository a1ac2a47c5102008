/**
 * One connected socket: its identity and token lifetime, its subscriptions, its message handling, its liveness.
 * Messages are handled one at a time in arrival order (a `subscribe` may wait on `authorizeSubscription` or a
 * replay), so answers come in the order their requests were sent.
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { CloseCode, ErrorCode } from '../../types/wire-constants.js'
import type {
  ClientMessage, ErrorMessage, MemberStatus, ReadMessage, ServerMessage, SubscribeMessage, TypingMessage
} from '../../types/messages.js'
import { wireFrameOf } from '../activity-frame.js'
import { EPHEMERAL_BUFFER_SHARE, INVALID_MESSAGE_STREAK_LIMIT } from '../constants.js'
import { NO_INFO, type MemberInfo } from '../presence/member-info.js'
import { parseClientFrame } from './message-parser.js'
import { MAX_TIMER_DELAY, type PovRealtimeUser, type ResolvedOptions } from '../options.js'
import { MessageRateLimiter } from './rate-limiter.js'
import type { StatsCounters } from '../stats.js'
import { Subscription, type ActivityReceiver } from '../subscription-index.js'
import type { SocketIdentity, TokenService } from '../auth/tokens.js'
import type { Broker, Replay } from '../broker.js'
import type { Feature } from '../../types/schemas.js'
import type { PresenceFeature, PresenceReceiver } from '../presence/presence-feature.js'
import type { ReadReceiptsFeature, ReadState } from '../read-receipts/read-receipts-feature.js'
import { SocketWriter } from './socket-writer.js'
import { closeCodeOfFrameError } from './frame-errors.js'

/** What a session needs from the hub that owns it. */
export interface SessionHost {
  readonly options: ResolvedOptions
  readonly stats: StatsCounters
  readonly tokens: TokenService
  readonly broker: Broker
  readonly enabledFeatures: ReadonlySet<Feature>
  /** `presence` on: the instance's members, statuses and typing. */
  readonly presence: PresenceFeature | undefined
  /** The read receipts, when `readReceipts` is on. */
  readonly readReceipts: ReadReceiptsFeature | undefined
  /** Adds a live subscription to the index (watching the PoV in the broker if it is the first). */
  watch (subscription: Subscription): Promise<void>
  /** Removes a subscription from the index (unwatching the PoV if it was the last). */
  unwatch (subscription: Subscription): void
  /** The session's socket has closed. */
  forget (session: SocketSession): void
}

const TEXT = { binary: false } as const

export class SocketSession implements ActivityReceiver, PresenceReceiver {
  readonly #ws: WebSocket
  /** The upgraded connection ws reads and writes (the upgrade request's socket). */
  readonly #socket: Duplex
  /** Writes ready frames to `#socket`, several of one turn in one write. */
  readonly #writer: SocketWriter
  /** No extension was negotiated (ws computes `extensions` on each read): ws would frame an activity as we do. */
  readonly #plainFrames: boolean
  readonly #request: FastifyRequest
  readonly #host: SessionHost
  readonly #log: FastifyBaseLogger
  readonly #limiter: MessageRateLimiter | undefined
  /** PoVs this socket watches, or is being authorized for (then `null`). */
  readonly #subscriptions = new Map<string, Subscription | null>()
  readonly #queue: ClientMessage[] = []
  #user: PovRealtimeUser
  #expiresAt: number
  #expiryTimer: NodeJS.Timeout | undefined
  #draining = false
  #invalidStreak = 0
  #answeredPing = true
  #closed = false
  /** `presence` on: this socket's activity status, and its public info (computed at its first subscribe). */
  #status: MemberStatus = 'active'
  #presenceInfo: MemberInfo | undefined

  constructor (ws: WebSocket, request: FastifyRequest, identity: SocketIdentity, host: SessionHost) {
    this.#ws = ws
    this.#socket = request.raw.socket
    this.#writer = new SocketWriter(this.#socket, () => this.#checkBuffered())
    this.#plainFrames = ws.extensions === ''
    this.#request = request
    this.#host = host
    this.#log = request.log
    this.#user = identity.user
    this.#expiresAt = identity.expiresAt
    const { rateLimit } = host.options
    this.#limiter = rateLimit ? new MessageRateLimiter(rateLimit) : undefined
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onFrame(data, isBinary))
    ws.on('pong', () => { this.#answeredPing = true })
    ws.on('close', () => this.#onClosed())
    ws.on('error', (err) => this.#onProtocolError(err))
    this.#scheduleExpiry()
  }

  get userId (): string {
    return this.#user.userId
  }

  get status (): MemberStatus {
    return this.#status
  }

  /**
   * Writes one activity. `wire` is the payload already framed (shared by every recipient of the broadcast); it goes
   * straight to the connection's socket when ws would frame it the same way (an open socket without extensions:
   * ws then writes each frame synchronously, so frames never interleave), else ws frames the payload itself.
   * Closes the socket as a slow consumer once too much is queued to it.
   */
  sendActivity (payload: Buffer, wire: Buffer = wireFrameOf(payload)): boolean {
    if (this.#closed) return false
    const ws = this.#ws
    if (this.#plainFrames && ws.readyState === ws.OPEN) this.#writer.write(wire)
    else ws.send(payload, TEXT)
    this.#host.stats.deliveries++
    if (ws.bufferedAmount > this.#host.options.maxBufferedBytes) this.#checkBuffered()
    return true
  }

  /** Writes one serialized server message (shared by its recipients); closes a slow consumer like `sendActivity`. */
  sendMessage (payload: Buffer): void {
    if (this.#closed) return
    this.#ws.send(payload, TEXT)
    if (this.#ws.bufferedAmount > this.#host.options.maxBufferedBytes) this.#checkBuffered()
  }

  /** Closes a slow consumer: more than `maxBufferedBytes` queued once the turn's corked frames were handed over. */
  #checkBuffered (): void {
    if (this.#closed) return
    this.#writer.flush()
    if (this.#ws.bufferedAmount > this.#host.options.maxBufferedBytes) this.closeSlowConsumer()
  }

  /**
   * Writes one serialized presence or typing message (shared by its recipients), unless the socket already has more
   * than its share of `maxBufferedBytes` queued: those are ephemeral, and the first thing dropped for a slow consumer
   * (activities keep the room).
   */
  sendEphemeral (payload: Buffer): boolean {
    if (this.#closed) return false
    if (this.#ws.bufferedAmount > this.#host.options.maxBufferedBytes * EPHEMERAL_BUFFER_SHARE) {
      this.#host.stats.presenceDropped++
      return false
    }
    this.#ws.send(payload, TEXT)
    return true
  }

  /** Closes with 4008: the client cannot keep up. */
  closeSlowConsumer (): void {
    if (this.#closed) return
    this.#closed = true // no more writes: the queue is already past its bound
    this.#host.stats.slowConsumerCloses++
    this.#host.stats.countClosed(CloseCode.TOO_MANY)
    this.#log.warn({ userId: this.#user.userId, bufferedAmount: this.#ws.bufferedAmount }, 'pov-realtime: client reads too slowly; closing')
    // The close frame queues behind the data the client is not reading, so the connection is cut as well.
    this.#ws.close(CloseCode.TOO_MANY, 'too slow')
    this.#ws.terminate()
  }

  /**
   * Closes with 1011: activities of a watched PoV were lost in transit. The client reconnects and resumes with
   * `since`, and the answer (`recovered: false`) tells it to reload, rather than it silently missing them.
   */
  closeInterrupted (): void {
    this.close(CloseCode.INTERNAL_ERROR, 'feed interrupted; resume')
  }

  /** One heartbeat tick: terminate the peer if it missed the previous ping, else ping it. */
  heartbeat (): void {
    if (this.#closed) return
    if (!this.#answeredPing) {
      this.#log.info({ userId: this.#user.userId }, 'pov-realtime: peer missed its pong; terminating')
      this.#ws.terminate()
      return
    }
    this.#answeredPing = false
    this.#ws.ping()
  }

  /** Closes with `code` (counted in stats), unless already closing. */
  close (code: CloseCode, reason: string): void {
    if (this.#closed || this.#ws.readyState >= this.#ws.CLOSING) return
    this.#host.stats.countClosed(code)
    this.#ws.close(code, reason)
  }

  /** Cuts the connection without a close handshake (shutdown past its grace period). */
  terminate (): void {
    this.#ws.terminate()
  }

  // ---- incoming ------------------------------------------------------------------------------

  #onFrame (data: Buffer, isBinary: boolean): void {
    if (this.#closed) return
    // ws enforces maxPayload when this plugin registered @fastify/websocket; this covers an app-registered one.
    if (data.length > this.#host.options.maxPayload) {
      this.close(CloseCode.MESSAGE_TOO_BIG, 'message too big')
      return
    }
    if (this.#limiter) {
      const verdict = this.#limiter.hit(Date.now())
      if (verdict === 'warn') return this.#sendError(ErrorCode.RATE_LIMITED, 'too many messages; slow down')
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
      while (this.#queue.length > 0 && !this.#closed) {
        const pending = this.#handle(this.#queue.shift()!)
        if (pending) await pending
      }
    } catch (err) {
      this.#log.error({ err }, 'pov-realtime: unexpected fault while handling a message')
      this.close(CloseCode.INTERNAL_ERROR, 'internal error')
    } finally {
      this.#draining = false
    }
  }

  /** Handles one message; returns a promise only when the handling waits on something. */
  #handle (message: ClientMessage): Promise<void> | undefined {
    switch (message.type) {
      case 'ping':
        this.#send({ type: 'pong' })
        return undefined
      case 'subscribe':
        return this.#subscribe(message)
      case 'unsubscribe':
        this.#unsubscribe(message.povId)
        this.#send({ type: 'unsubscribed', povId: message.povId })
        return undefined
      case 'auth':
        this.#reauthenticate(message.token)
        return undefined
      case 'read':
        return this.#markRead(message)
      case 'reads':
        return this.#sendReads(message.povId)
      case 'status':
        if (message.status !== this.#status) {
          this.#status = message.status
          this.#host.presence?.statusChanged(this)
        }
        return undefined
      case 'typing':
        this.#typing(message)
        return undefined
    }
  }

  async #subscribe ({ povId, since }: SubscribeMessage): Promise<void> {
    if (this.#subscriptions.has(povId)) {
      // Idempotent: still one subscription, still one copy of each activity.
      this.#send({ type: 'subscribed', povId, ...await this.#readState(povId) })
      this.#joinPresence(povId)
      return
    }
    if (this.#subscriptions.size >= this.#host.options.maxSubscriptions) {
      return this.#sendError(ErrorCode.SUBSCRIPTION_LIMIT, `at most ${this.#host.options.maxSubscriptions} PoVs per connection`, povId)
    }
    this.#subscriptions.set(povId, null)
    if (!await this.#mayWatch(povId)) {
      this.#subscriptions.delete(povId)
      if (!this.#closed) this.#sendError(ErrorCode.FORBIDDEN, 'not allowed to watch this PoV', povId)
      return
    }
    if (this.#host.presence && !this.#presenceInfo) this.#presenceInfo = await this.#host.presence.memberInfo(this.#user)
    if (this.#closed) return
    const subscription = new Subscription(this, povId)
    // Live entries wait while the replay or the read state is fetched, so that they follow `subscribed`.
    if (since !== undefined || this.#host.readReceipts) subscription.pending = []
    this.#subscriptions.set(povId, subscription)
    await this.#host.watch(subscription)
    if (this.#closed) return
    if (subscription.pending === null) {
      this.#send({ type: 'subscribed', povId })
      this.#joinPresence(povId)
      return
    }
    await this.#answerHeld(subscription, since)
  }

  /** `presence` on, right after `subscribed` (and the replay): the member joins, if new, and gets the snapshot. */
  #joinPresence (povId: string): void {
    if (!this.#closed) this.#host.presence?.join(this, povId, this.#presenceInfo ?? NO_INFO)
  }

  async #mayWatch (povId: string): Promise<boolean> {
    const authorize = this.#host.options.authorizeSubscription
    if (!authorize) return true
    try {
      // Only a real `true` grants access: a truthy stray value (an unawaited promise, an object) does not.
      return await authorize(this.#user, povId, this.#request) === true
    } catch (err) {
      this.#log.error({ err, povId }, 'pov-realtime: authorizeSubscription threw; refusing the subscription')
      return false
    }
  }

  /**
   * Answers a subscription whose live entries are held: the activities the client missed after `since` (when it
   * resumes), then `subscribed` (with the read state when read receipts are on), then the presence snapshot (which
   * the protocol puts right after `subscribed`), then what arrived meanwhile in arrival order: live entries (each
   * once) and other messages of the PoV (`read` events).
   */
  async #answerHeld (subscription: Subscription, since: string | undefined): Promise<void> {
    const { povId } = subscription
    const replay = since === undefined ? undefined : await this.#replay(povId, since)
    const readState = await this.#readState(povId)
    if (this.#closed || this.#subscriptions.get(povId) !== subscription) return
    const sent = new Set<string>()
    for (const entry of replay?.entries ?? []) {
      this.sendActivity(entry.frame)
      sent.add(entry.cursor)
    }
    this.#send({ type: 'subscribed', povId, ...(replay && { recovered: replay.recovered }), ...readState })
    this.#joinPresence(povId)
    const pending = subscription.pending ?? []
    subscription.pending = null
    for (const held of pending) {
      if (Buffer.isBuffer(held)) this.sendMessage(held)
      else if (!sent.has(held.cursor) && !replay?.held?.(held.cursor)) this.sendActivity(held.frame)
    }
  }

  async #replay (povId: string, since: string): Promise<Replay> {
    try {
      return await this.#host.broker.replay(povId, since)
    } catch (err) {
      this.#log.warn({ err, povId }, 'pov-realtime: history unavailable; answering recovered: false')
      return { recovered: false, entries: [] }
    }
  }

  /** The user's read state on `povId` for `subscribed`: none when read receipts are off or their store failed. */
  async #readState (povId: string): Promise<Partial<ReadState>> {
    const receipts = this.#host.readReceipts
    if (!receipts) return {}
    try {
      return await receipts.stateOf(povId, this.#user.userId)
    } catch (err) {
      this.#log.warn({ err, povId }, 'pov-realtime: read marks unavailable; subscribed goes without the read state')
      return {}
    }
  }

  /** `read`: its answer is the `read` event that every subscriber gets, this socket included (none for an older cursor). */
  async #markRead ({ povId, cursor }: ReadMessage): Promise<void> {
    const receipts = this.#receiptsOfWatched(povId, 'read')
    if (!receipts) return
    try {
      await receipts.markRead(this.#user.userId, povId, cursor)
    } catch (err) {
      if ((err as { code?: unknown }).code === 'POV_REALTIME_INVALID_CURSOR') {
        return this.#sendError(ErrorCode.INVALID_MESSAGE, "'cursor' is not one of this PoV's cursors", povId)
      }
      this.#log.warn({ err, povId }, 'pov-realtime: read marks unavailable; a read mark was not recorded')
    }
  }

  async #sendReads (povId: string): Promise<void> {
    const receipts = this.#receiptsOfWatched(povId, 'reads')
    if (!receipts) return
    try {
      this.#send({ type: 'reads', povId, reads: await receipts.recentReads(povId) })
    } catch (err) {
      this.#log.warn({ err, povId }, 'pov-realtime: read marks unavailable; a reads request went unanswered')
    }
  }

  /**
   * The read receipts, for a PoV this socket watches; otherwise `INVALID_MESSAGE`, so that a socket that may not
   * watch a PoV learns nothing of its marks. (The parser already answered `NOT_ENABLED` while the option is off.)
   */
  #receiptsOfWatched (povId: string, type: 'read' | 'reads'): ReadReceiptsFeature | undefined {
    if (this.#subscriptions.get(povId)) return this.#host.readReceipts
    this.#sendError(ErrorCode.INVALID_MESSAGE, `subscribe to this PoV before sending '${type}'`, povId)
    return undefined
  }

  #unsubscribe (povId: string): void {
    const subscription = this.#subscriptions.get(povId)
    this.#subscriptions.delete(povId)
    if (subscription) this.#release(subscription)
  }

  /** Leaves the PoV's members (ending this socket's typing there), then unwatches it. */
  #release (subscription: Subscription): void {
    this.#host.presence?.leave(this, subscription.povId)
    this.#host.unwatch(subscription)
  }

  /** `typing` is only for a PoV this socket watches, so nobody learns of a PoV `authorizeSubscription` refuses. */
  #typing ({ povId, typing }: TypingMessage): void {
    if (!this.#subscriptions.get(povId)) {
      return this.#sendError(ErrorCode.INVALID_MESSAGE, 'typing needs a subscription to this PoV; subscribe first', povId)
    }
    this.#host.presence?.typing(this, povId, typing)
  }

  #reauthenticate (token: string): void {
    let identity: SocketIdentity
    try {
      identity = this.#host.tokens.verifySocketToken(token)
    } catch (refusal) {
      this.#log.info({ reason: (refusal as { reason?: string }).reason }, 'pov-realtime: in-band token refused')
      return this.#sendError(ErrorCode.INVALID_TOKEN, 'token refused; the connection keeps its current token')
    }
    if (identity.user.userId !== this.#user.userId) {
      this.#log.warn({ userId: this.#user.userId }, 'pov-realtime: in-band token for another user refused')
      return this.close(CloseCode.FORBIDDEN, 'identity change refused')
    }
    this.#user = identity.user
    this.#expiresAt = identity.expiresAt
    this.#scheduleExpiry()
    this.#send({ type: 'authenticated', expiresAt: this.#expiresAt })
  }

  // ---- outgoing ------------------------------------------------------------------------------

  #send (message: ServerMessage): void {
    if (!this.#closed) this.#ws.send(JSON.stringify(message))
  }

  #sendError (code: ErrorCode, message: string, povId?: string): void {
    const error: ErrorMessage = { type: 'error', code, message }
    if (povId !== undefined) error.povId = povId
    this.#reject(error)
  }

  #reject (error: ErrorMessage): void {
    this.#host.stats.countRejected(error.code)
    this.#send(error)
  }

  // ---- lifetime -----------------------------------------------------------------------------

  #scheduleExpiry (): void {
    clearTimeout(this.#expiryTimer)
    const delay = this.#expiresAt - Date.now()
    this.#expiryTimer = delay > MAX_TIMER_DELAY
      ? setTimeout(() => this.#scheduleExpiry(), MAX_TIMER_DELAY)
      : setTimeout(() => this.close(CloseCode.TOKEN_EXPIRED, 'token expired'), Math.max(0, delay))
    this.#expiryTimer.unref()
  }

  /**
   * ws itself closes the socket on a frame it cannot accept (too big: 1009, not UTF-8: 1007, broken framing: 1002)
   * and reports it here: count the close it sent. These are the client's faults, so they are logged at info.
   */
  #onProtocolError (err: Error & { code?: string }): void {
    const code = closeCodeOfFrameError(err)
    if (code === undefined) {
      this.#log.warn({ err }, 'pov-realtime: socket error')
      return
    }
    this.#host.stats.countClosed(code)
    this.#log.info({ code, reason: err.message }, 'pov-realtime: closed a socket that sent an invalid frame')
  }

  #onClosed (): void {
    this.#closed = true
    clearTimeout(this.#expiryTimer)
    this.#queue.length = 0
    for (const subscription of this.#subscriptions.values()) {
      if (subscription) this.#release(subscription)
    }
    this.#subscriptions.clear()
    this.#host.forget(this)
  }
}
