/**
 * The instance's live state: its sockets, the subscription index, the broker and the counters. It is what
 * `fastify.povRealtime` exposes and what `fastify.broadcastActivity` calls. One activity's path:
 * `broadcast` → `serializeActivity` → `broker.publish` → `deliver` (the broker's sink) → `SubscriptionIndex.fanOut`
 * → `Subscription.deliver` → `SocketWriter.sendActivity` → the socket.
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { CloseCode } from '../types/wire-constants.js'
import type { ActivityInput } from '../types/activity.js'
import { serializeActivity } from './activity-serializer.js'
import { revokeArgument } from './api-arguments.js'
import type { Broker, BrokerEntry, ControlMessage } from './broker.js'
import { SHUTDOWN_GRACE_MS } from './constants.js'
import { ClosedError, NotEnabledError } from './errors.js'
import { InProcessBroker } from './in-process/index.js'
import type { Feature } from '../types/schemas.js'
import type { ResolvedOptions } from './options.js'
import { ReadReceiptsFeature } from './read-receipts/read-receipts-feature.js'
import { PresenceFeature } from './presence/presence-feature.js'
import { Heartbeat } from './socket/heartbeat.js'
import { SocketSession, type SessionHost, type SocketOpening } from './socket/socket-session.js'
import { writerSettings, type WriterSettings } from './socket/socket-writer.js'
import { StatsCounters, type PovRealtimeStats } from './stats.js'
import { SubscriptionIndex, type Subscription } from './subscription-index.js'
import type { TokenService } from './auth/tokens.js'
import { ExpirySchedule } from './auth/expiry-schedule.js'
import type { BroadcastResult } from './realtime-api.js'

export class RealtimeHub implements SessionHost {
  readonly options: ResolvedOptions
  readonly stats = new StatsCounters()
  readonly writerSettings: WriterSettings
  readonly broker: Broker
  readonly enabledFeatures: ReadonlySet<Feature>
  /** The read receipts, when `readReceipts` is on. */
  readonly readReceipts: ReadReceiptsFeature | undefined
  /** `presence` on: who watches each PoV, their status, who types. */
  readonly presence: PresenceFeature | undefined
  /** Every socket's token expiry, on one timer. */
  readonly expiries = new ExpirySchedule()
  readonly #index = new SubscriptionIndex()
  readonly #sessions = new Set<SocketSession>()
  readonly #heartbeat: Heartbeat<SocketSession>
  /**
   * The open sockets of each user, for revocations and `maxSocketsPerUser`: the session itself while the user has one
   * here (the usual case, and a `Set` per user would double what the hub spends per socket), a set from the second on.
   */
  readonly #sessionsOf = new Map<string, SocketSession | Set<SocketSession>>()
  #warnedLocalRevoke = false
  /**
   * Each user's upgrades admitted and not yet sessions (from the upgrade's check to the hand-over, or the connection's
   * close). With the user's sessions (`#sessionsOf`), what `maxSocketsPerUser` counts: an open socket is counted by its
   * session alone, so that an idle connection has no entry here (a count per user beside `#sessionsOf` cost some 50
   * bytes of each).
   */
  readonly #admitting = new Map<string, number>()
  /** Whose connection each admitted connection is, for {@link RealtimeHub.#onAdmittedClose}. */
  readonly #userOfConnection = new WeakMap<Duplex, string>()
  /** One `close` listener shared by every admitted connection (`this` is the connection): no closure per socket. */
  readonly #onAdmittedClose: (this: Duplex) => void
  /** Users refused a socket since they last were under `maxSocketsPerUser` (logged once per such spell). */
  readonly #atSocketLimit = new Set<string>()
  readonly #log: FastifyBaseLogger
  #tokens: TokenService | undefined
  #closing = false
  /** Set while `closeSockets` waits for the last socket to go. */
  #onAllClosed: (() => void) | undefined

  constructor (options: ResolvedOptions, log: FastifyBaseLogger) {
    this.options = options
    this.#log = log
    this.writerSettings = writerSettings(options.maxBufferedBytes, this.stats)
    this.#heartbeat = new Heartbeat(this.#sessions, options.heartbeatInterval)
    this.broker = options.broker ?? new InProcessBroker()
    const features = new Set<Feature>()
    if (options.presence) features.add('presence')
    if (options.readReceipts) features.add('readReceipts')
    this.enabledFeatures = features
    // The options check guarantees a store when the feature is on.
    this.readReceipts = options.readReceipts
      ? new ReadReceiptsFeature(this.broker.readMarks!, (povId, payload) => this.#index.sendToAll(povId, payload))
      : undefined
    this.presence = options.presence ? new PresenceFeature(options.presence, this.broker.presence, log) : undefined
    const releaseAdmission = (connection: Duplex) => this.#releaseAdmission(connection)
    this.#onAdmittedClose = function (this: Duplex) { releaseAdmission(this) }
  }

  get tokens (): TokenService {
    return this.#tokens!
  }

  get closing (): boolean {
    return this.#closing
  }

  /** Starts the broker and the heartbeat; the token service comes from the plugin's encapsulated context. */
  async start (tokens: TokenService): Promise<void> {
    this.#tokens = tokens
    await this.broker.start({
      sink: {
        deliver: (povId: string, entry: BrokerEntry) => this.#index.fanOut(povId, entry),
        interrupted: (povId: string, cursor: string | null) => {
          this.stats.feedInterruptions++
          // In-band, on the open sockets: closing them would turn one broker fault into a reconnect storm.
          const subscribers = this.#index.resync(povId, cursor)
          this.stats.resyncs += subscribers
          this.#log.warn({ povId, subscribers }, 'pov-realtime: activities of a PoV were lost in transit; its subscribers were sent resync')
        },
        control: (message: ControlMessage) => this.#applyControl(message)
      },
      history: this.options.history,
      log: this.#log,
      limitTripped: (limit) => this.stats.countLimitTrip(limit),
      faulted: () => { this.stats.brokerFaults++ }
    })
    await this.readReceipts?.start()
    if (this.presence) await this.broker.presence?.start(this.presence.sink)
    this.#heartbeat.start()
  }

  /** `fastify.broadcastActivity`: validates, publishes, and resolves once this instance's subscribers have it. */
  async broadcast (activity: ActivityInput): Promise<BroadcastResult> {
    if (this.#closing) throw new ClosedError()
    const { povId, json } = serializeActivity(activity)
    const result = await this.broker.publish(povId, json)
    this.stats.broadcasts++
    return result
  }

  /** `fastify.povRealtime.revoke`: on every instance, through the broker. */
  async revoke (target: unknown): Promise<void> {
    const { userId, povId } = revokeArgument(target)
    const message: ControlMessage = povId === undefined ? { type: 'revoke', userId } : { type: 'revoke', userId, povId }
    if (this.broker.control) return await this.broker.control(message)
    if (!this.#warnedLocalRevoke) {
      this.#warnedLocalRevoke = true
      this.#log.warn('pov-realtime: the broker has no control(); revocations reach this instance only')
    }
    this.#applyControl(message)
  }

  /** A control message from any instance (this one included), applied to this instance's sockets. */
  #applyControl (message: ControlMessage): void {
    const sessions = this.#sessionsOf.get(message.userId)
    if (!sessions) return
    for (const session of sessions instanceof Set ? [...sessions] : [sessions]) session.revoke(message.povId)
  }

  /** The read receipts, or a rejection naming the option when it is off. */
  requireReadReceipts (caller: string): ReadReceiptsFeature {
    if (!this.readReceipts) throw new NotEnabledError(`fastify.povRealtime.${caller}`, 'readReceipts')
    return this.readReceipts
  }

  /** The presence feature, or a rejection naming the option when it is off. */
  requirePresence (caller: string): PresenceFeature {
    if (!this.presence) throw new NotEnabledError(`fastify.povRealtime.${caller}`, 'presence')
    return this.presence
  }

  /**
   * The upgrade of `userId` passed its checks: counts its connection until the connection closes, or refuses it
   * (false) when the user already holds `maxSocketsPerUser` here. Counted from the check rather than from the open,
   * so that upgrades of one user in flight at once cannot all pass.
   */
  admitSocket (userId: string, connection: Duplex, log: FastifyBaseLogger): boolean {
    const max = this.options.maxSocketsPerUser
    if (this.#socketsOf(userId) >= max) {
      this.stats.countLimitTrip('maxSocketsPerUser')
      if (!this.#atSocketLimit.has(userId)) {
        this.#atSocketLimit.add(userId)
        log.warn({ userId, limit: 'maxSocketsPerUser', max }, 'pov-realtime: a user holds maxSocketsPerUser sockets; another upgrade refused with 429')
      }
      return false
    }
    if (connection.destroyed) return true // gone already: its upgrade goes no further, and 'close' may have passed
    this.#admitting.set(userId, (this.#admitting.get(userId) ?? 0) + 1)
    this.#userOfConnection.set(connection, userId)
    connection.on('close', this.#onAdmittedClose)
    return true
  }

  /** An admitted connection closed before it became a session: its user holds one socket fewer. */
  #releaseAdmission (connection: Duplex): void {
    const userId = this.#userOfConnection.get(connection)
    if (userId === undefined) return
    this.#userOfConnection.delete(connection)
    this.#endAdmission(userId)
    this.#socketClosed(userId)
  }

  #endAdmission (userId: string): void {
    const left = this.#admitting.get(userId)! - 1
    if (left === 0) this.#admitting.delete(userId)
    else this.#admitting.set(userId, left)
  }

  /** The user's connections on this instance: admitted upgrades, and open sockets. */
  #socketsOf (userId: string): number {
    const sessions = this.#sessionsOf.get(userId)
    const open = sessions === undefined ? 0 : sessions instanceof Set ? sessions.size : 1
    return (this.#admitting.get(userId) ?? 0) + open
  }

  /** One of the user's connections is no longer counted. */
  #socketClosed (userId: string): void {
    if (this.#socketsOf(userId) < this.options.maxSocketsPerUser) this.#atSocketLimit.delete(userId)
  }

  /** A socket passed the upgrade's checks. */
  accept (opening: SocketOpening): void {
    const { ws } = opening
    if (this.#closing) {
      ws.on('error', () => ws.terminate()) // it has no other listener now (upgrade-handover.ts)
      this.stats.countClosed(CloseCode.GOING_AWAY)
      ws.close(CloseCode.GOING_AWAY, 'server shutting down')
      return
    }
    const session = new SocketSession(opening, this)
    this.#sessions.add(session)
    this.#heartbeat.joined()
    // The session counts for its user from here (in `#sessionsOf`) until `forget`: the admission ends, and the
    // connection's own 'close' listener goes (ws has one there too, and two make an array: some 250 bytes per socket).
    // Closed before the hand-over, the admission was released already.
    if (this.#userOfConnection.delete(opening.connection)) {
      opening.connection.off('close', this.#onAdmittedClose)
      this.#endAdmission(session.userId)
    }
    const ofUser = this.#sessionsOf.get(session.userId)
    if (ofUser === undefined) this.#sessionsOf.set(session.userId, session)
    else if (ofUser instanceof Set) ofUser.add(session)
    else this.#sessionsOf.set(session.userId, new Set([ofUser, session]))
  }

  async watch (subscription: Subscription): Promise<void> {
    if (this.#index.add(subscription)) {
      this.presence?.watch(subscription.povId)
      await this.broker.watch(subscription.povId)
    }
  }

  unwatch (subscription: Subscription): void {
    if (this.#index.remove(subscription)) {
      this.presence?.unwatch(subscription.povId)
      Promise.resolve(this.broker.unwatch(subscription.povId)).catch((err: unknown) => {
        this.#log.warn({ err, povId: subscription.povId }, 'pov-realtime: broker failed to unwatch a PoV')
      })
    }
  }

  forget (session: SocketSession): void {
    if (!this.#sessions.delete(session)) return
    const ofUser = this.#sessionsOf.get(session.userId)
    if (ofUser === session) this.#sessionsOf.delete(session.userId)
    else if (ofUser instanceof Set && ofUser.delete(session) && ofUser.size === 0) this.#sessionsOf.delete(session.userId)
    this.#socketClosed(session.userId)
    if (this.#sessions.size === 0) this.#onAllClosed?.()
  }

  snapshot (): PovRealtimeStats {
    return this.stats.snapshot({
      connections: this.#sessions.size,
      subscriptions: this.#index.subscriptionCount,
      povs: this.#index.povCount,
      presenceMembers: this.presence?.memberCount ?? 0
    })
  }

  /** `preClose`: every socket gets 1001; those that do not close within the grace period are cut. */
  async closeSockets (): Promise<void> {
    this.#closing = true
    this.#heartbeat.stop()
    if (this.#sessions.size === 0) return
    let graceTimer: NodeJS.Timeout | undefined
    const allClosed = new Promise<void>((resolve) => { this.#onAllClosed = resolve })
    const graceOver = new Promise<void>((resolve) => { graceTimer = setTimeout(resolve, SHUTDOWN_GRACE_MS) })
    for (const session of [...this.#sessions]) session.close(CloseCode.GOING_AWAY, 'server shutting down')
    await Promise.race([allClosed, graceOver])
    clearTimeout(graceTimer)
    for (const session of this.#sessions) session.terminate()
  }

  /** `onClose`: stops the read events and releases the broker. */
  async closeBroker (): Promise<void> {
    this.readReceipts?.close()
    await this.broker.close()
  }
}
