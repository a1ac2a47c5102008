/**
 * The framework-free client: one connection (`connection-machine.ts`), the public API the React hooks are thin views
 * of (it works just as well without React), and the dispatch of each server message to the part that owns it:
 *
 * - `activity-feed.ts`: which PoVs are watched, their subscriptions, activities and activity listeners;
 * - `presence-feature.ts`: members and typing; `status-reporter.ts`: this page's own status;
 * - `read-receipts-feature.ts`: marks, unread counts and marks waiting to be sent (`pending-reads.ts`);
 * - `persistence/reload-persistence.ts`: what is kept for the next reload, and restored from it;
 * - `pov-registry.ts`: the state held per PoV, which they share.
 *
 * Feature messages go out only once the server has shown the feature is on, so that an app whose server has
 * `presence` or `readReceipts` off never draws a `NOT_ENABLED`: `status` after a first `presence` snapshot, `typing`
 * on a PoV whose snapshot came on this connection, `read` and `reads` on a PoV whose `subscribed` carried `readCursor`.
 */
import type { ActivityInput } from '../../types/activity.js'
import type { ActivityMessage, ClientMessage, Member, ServerMessage, SubscribedMessage } from '../../types/messages.js'
import { ActivityFeed, type ActivityEvent } from './activity-feed.js'
import { EMPTY_ACTIVITIES, type ActivitiesSnapshot } from './activity-list.js'
import { BatchScheduler } from './support/batch-scheduler.js'
import { BoundedQueue } from './support/bounded-queue.js'
import {
  resolveClientOptions, resolveDocument, resolveSocketUrl, type RealtimeClientOptions, type ResolvedClientOptions
} from './client-options.js'
import { ConnectionMachine, type ConnectionState, type ConnectionStatus } from './connection/connection-machine.js'
import { ReloadPersistence } from './persistence/reload-persistence.js'
import { PendingReads } from './read-receipts/pending-reads.js'
import { PovRegistry } from './pov-registry.js'
import { PresenceFeature } from './presence/presence-feature.js'
import { NOBODY_TYPING, NO_MEMBERS } from './presence/presence-store.js'
import { PublishedValue } from './support/published-value.js'
import { ReadReceiptsFeature } from './read-receipts/read-receipts-feature.js'
import { NOTHING_READ, type ReadReceiptsSnapshot } from './read-receipts/pov-read-receipts.js'
import { releaseOnce } from './support/release-once.js'
import { StatusReporter } from './presence/status-reporter.js'
import { userIdOfToken } from './connection/token-claims.js'
import { HttpTokenProvider, type AuthError, type SocketToken, type TokenProvider } from './connection/token-source.js'
import { webSocketTransport } from './connection/transport.js'
import { WatchRegistry } from './watch-registry.js'

/** What `sendMessage` accepts: a protocol message, or another `{ type, … }` object for features added later. */
export type OutgoingMessage = ClientMessage | { type: string, [field: string]: unknown }

/** The connection as components see it. */
export interface ConnectionSnapshot {
  /** `'disconnected'` until the first open; `'reconnected'` after any later one. */
  readonly status: ConnectionStatus
  readonly isConnected: boolean
  /** Set when the token route refused the session (signed out): the client stopped reconnecting. */
  readonly authError: AuthError | null
  /** The machine's finer state (`'waiting'` between attempts, `'auth-failed'`, `'revoked'` after a 4003 close, …). */
  readonly state: ConnectionState
}

/** The snapshot of a client that has never connected (also what server-side rendering shows). */
export const DISCONNECTED: ConnectionSnapshot = Object.freeze({
  status: 'disconnected',
  isConnected: false,
  authError: null,
  state: 'idle'
})

export class RealtimeClient {
  readonly #options: ResolvedClientOptions
  readonly #machine: ConnectionMachine
  readonly #tokens: TokenProvider
  readonly #scheduler: BatchScheduler
  readonly #connection: PublishedValue<ConnectionSnapshot>
  readonly #lastMessage: PublishedValue<ServerMessage | null>
  readonly #messageListeners = new Set<(message: ServerMessage) => void>()
  /** What `send` was given while disconnected. */
  readonly #queue: BoundedQueue<string>
  // The parts, each owning what its file says.
  readonly #povs: PovRegistry
  readonly #offline: ReloadPersistence
  readonly #feed: ActivityFeed
  readonly #status: StatusReporter
  readonly #presence: PresenceFeature
  readonly #reads: ReadReceiptsFeature
  #consumers = 0
  #lingerTimer: unknown
  /** The session's user, from the token; `undefined` until a token is known (or when it is not a readable JWT). */
  #userId: string | undefined
  #wasOpen = false
  #wasRevoked = false

  /** See {@link RealtimeClientOptions} for the options and their defaults. */
  constructor (options: RealtimeClientOptions = {}) {
    const resolved = this.#options = resolveClientOptions(options)
    const { timers } = resolved
    this.#queue = new BoundedQueue(resolved.maxQueuedMessages)
    this.#scheduler = new BatchScheduler(resolved.batchWindow, timers)
    const schedule = (flush: () => void) => this.#scheduler.schedule(flush)
    this.#connection = new PublishedValue(DISCONNECTED, schedule)
    this.#lastMessage = new PublishedValue<ServerMessage | null>(null, schedule)

    // Sent now if a connection is open; each part decides what waits for the next one and what is dropped.
    const send = (message: ClientMessage): boolean => this.#machine.send(JSON.stringify(message))
    const userId = (): string | undefined => this.#userId
    const watches = new WatchRegistry()
    const pendingReads = new PendingReads()
    const povs = this.#povs = new PovRegistry({
      capacity: resolved.activityLimit,
      timers,
      typingExpiry: resolved.typingExpiry,
      schedule
    }, watches)
    const offline = this.#offline = new ReloadPersistence(resolved, { povs, watches, pendingReads, userId })
    this.#feed = new ActivityFeed({ povs, watches, offline, send })
    const status = this.#status = new StatusReporter({
      idleTimeout: resolved.idleTimeout,
      timers,
      document: () => resolveDocument(resolved.document),
      send: (value) => send({ type: 'status', status: value })
    })
    this.#presence = new PresenceFeature({ povs, status, send, userId, typingInterval: resolved.typingInterval, timers })
    this.#reads = new ReadReceiptsFeature({ povs, pendingReads, offline, send, userId, timers })

    this.#tokens = resolved.tokens ?? new HttpTokenProvider({ url: resolved.tokenUrl, fetch: resolved.fetch, timers })
    this.#machine = new ConnectionMachine({
      resolveUrl: () => resolveSocketUrl(resolved.socketUrl),
      transport: resolved.transport ?? webSocketTransport(resolved.WebSocket),
      tokens: this.#tokens,
      timers,
      random: resolved.random,
      network: resolved.network,
      backoff: resolved.reconnect,
      pingInterval: resolved.pingInterval,
      pongTimeout: resolved.pongTimeout,
      connectTimeout: resolved.connectTimeout
    }, {
      connecting: (token) => this.#onConnecting(token),
      opened: () => this.#onOpened(),
      message: (message) => this.#onMessage(message),
      changed: () => this.#onStateChanged()
    })
  }

  // ---- lifetime ------------------------------------------------------------------------------

  /**
   * Declares one more user of the connection (each mounted hook is one) and connects if needed.
   * Returns the release function; once the last user has released, the socket closes after `linger` ms
   * unless someone retains it again meanwhile (as React StrictMode's remount does at once).
   */
  retain (): () => void {
    this.#consumers++
    if (this.#lingerTimer !== undefined) {
      this.#options.timers.clearTimeout(this.#lingerTimer)
      this.#lingerTimer = undefined
    }
    this.#machine.start()
    return releaseOnce(() => {
      if (--this.#consumers > 0) return
      this.#lingerTimer = this.#options.timers.setTimeout(() => {
        this.#lingerTimer = undefined
        if (this.#consumers === 0) this.close()
      }, this.#options.linger)
    })
  }

  /**
   * Closes the socket now and forgets the watched PoVs, their activities, the queued messages and the token
   * (the next session may be another user's). What `persist` keeps is written first, under the user's name: on
   * sign-out, call `clearPersistedRealtimeState()` as well. A later `retain()` starts afresh.
   */
  close (): void {
    this.#machine.stop()
    this.#tokens.invalidate()
    this.#offline.close()
    this.#forget()
  }

  /**
   * Connects now: after an auth error (once the user has signed in again), after the server revoked the user's access
   * (a 4003 close), to cut a backoff wait short, or to replace the current connection. Watched PoVs are resubscribed,
   * resuming after their last cursor, except those the server revoked one by one (they wait for a new watcher).
   */
  reconnect (): void {
    // After close(), components still mounted get their connection back.
    if (this.#machine.state === 'idle') {
      if (this.#consumers > 0) this.#machine.start()
      return
    }
    this.#machine.reconnect()
  }

  /**
   * Ends the session and starts a new one, keeping the watched PoVs: the status reads `'connected'` again, not
   * `'reconnected'`. Nothing when the client is idle.
   */
  restart (): void {
    if (this.#machine.state === 'idle') return
    this.#machine.stop()
    this.#machine.start()
  }

  /** Forgets watched PoVs, cursors, activities, queued messages and the last message (the test doubles' reset). */
  reset (): void {
    this.#forget()
    this.#lastMessage.set(null)
    this.#scheduler.flush()
  }

  /** Forgets the session: what another user's may not see, and what a later `retain()` starts without. */
  #forget (): void {
    this.#feed.forget()
    this.#queue.clear()
    this.#reads.forget()
    this.#userId = undefined
    this.#status.forget()
    this.#povs.forget()
  }

  // ---- sending and watching ------------------------------------------------------------------

  /**
   * Sends a message now, or once connected again (at most `maxQueuedMessages` are held; the oldest go first).
   * A `subscribe` counts as one more watcher of its PoV and an `unsubscribe` as one fewer, exactly like
   * {@link watch}: the PoV is subscribed while anyone watches it, and resubscribed after every reconnect.
   */
  send (message: OutgoingMessage): void {
    const { type, povId } = message as { type: unknown, povId?: unknown }
    if (type === 'subscribe' && typeof povId === 'string') {
      const { since } = message as { since?: unknown }
      return this.#feed.watch(povId, typeof since === 'string' ? since : undefined)
    }
    if (type === 'unsubscribe' && typeof povId === 'string' && this.#feed.isWatched(povId)) {
      return this.#feed.unwatch(povId)
    }
    const text = JSON.stringify(message)
    if (!this.#machine.send(text)) this.#queue.push(text)
  }

  /** Watches `povId` until the returned function is called: one `subscribe` however many watch it. */
  watch (povId: string): () => void {
    this.#feed.watch(povId, undefined)
    return releaseOnce(() => this.#feed.unwatch(povId))
  }

  // ---- presence, typing and read receipts ----------------------------------------------------

  /**
   * Reports this page's activity status to the server (`idle` after `idleTimeout` ms without input or while the page
   * is hidden, `active` again on return; changes only) until the returned function is called. The presence hooks call
   * it, so that an app without presence never sends a status. Nothing with `idleTimeout: false` or without a document.
   */
  reportActivityStatus (): () => void {
    return this.#status.retain()
  }

  /**
   * The user is typing on `povId` (`true`, as often as on every keystroke) or stopped (`false`). The server hears
   * `typing: true` at most once per `typingInterval`, and `typing: false` once: when told, or after a pause of
   * `typingInterval`. Not queued while disconnected: typing is ephemeral, and the next keystroke sends it again.
   */
  setTyping (povId: string, typing: boolean): void {
    this.#presence.setTyping(povId, typing)
  }

  /**
   * Marks `povId` read up to `cursor`, by default the newest activity the client holds of it. Nothing (false) when that
   * is known not to be newer than the user's mark, or the server is known to have read receipts off. The mark shows at
   * once (`readCursor`, `unread`, and in `reads`); while it cannot be sent (offline, or not subscribed yet) it waits,
   * kept by `persist`, and goes out once the PoV is subscribed again.
   */
  markRead (povId: string, cursor?: string): boolean {
    return this.#reads.markRead(povId, cursor)
  }

  /**
   * Keeps everyone's marks on `povId` up to date until the returned function is called: asks for them now if the PoV is
   * subscribed with read receipts on, and again after each subscription (`read` events update them in between).
   */
  followReads (povId: string): () => void {
    return this.#reads.followReads(povId)
  }

  // ---- what arrives --------------------------------------------------------------------------

  /** Whose session this is: another user's than before sees nothing of the first one's. */
  #onConnecting (token: SocketToken): void {
    const userId = userIdOfToken(token.token)
    if (userId !== this.#userId && this.#userId !== undefined) this.#forgetUser()
    this.#userId = userId
    if (userId !== undefined) this.#offline.open(userId)
  }

  /** Another user's session starts: nothing of the first user's stays, but the watched PoVs do. */
  #forgetUser (): void {
    this.#feed.forgetCursors()
    this.#reads.forget()
    this.#status.forget()
    this.#povs.clear()
  }

  #onOpened (): void {
    // The status first, so that the subscriptions below join as idle rather than flicker through active.
    this.#status.report()
    this.#feed.resubscribe()
    for (const text of this.#queue.drain()) this.#machine.send(text)
  }

  #onStateChanged (): void {
    this.#connection.set(this.#snapshot())
    const revoked = this.#machine.state === 'revoked'
    if (revoked && !this.#wasRevoked) {
      // Closed with 4003: the user's access was revoked as a whole; every watched PoV shows it.
      for (const povId of this.#feed.revokedAll()) this.#feed.emit(povId, { type: 'revoked', povId })
    }
    this.#wasRevoked = revoked
    const open = this.#machine.state === 'open'
    if (this.#wasOpen && !open) {
      // A new connection starts `active` at the server, and subscribes afresh.
      this.#status.connectionLost()
      this.#povs.connectionLost()
    }
    this.#wasOpen = open
  }

  #onMessage (message: ServerMessage): void {
    switch (message.type) {
      case 'activity':
        this.#onActivity(message)
        break
      case 'subscribed':
        this.#onSubscribed(message)
        break
      case 'error':
        this.#feed.refused(message)
        break
      case 'resync':
        if (this.#feed.resynced(message)) {
          // A reload resumes from the resync's cursor too, not from one of a history the server no longer has.
          this.#offline.save(message.povId)
          this.#feed.emit(message.povId, { type: 'resync', povId: message.povId })
        }
        break
      case 'unsubscribed':
        if (message.reason === 'revoked' && this.#feed.revoked(message)) {
          this.#feed.emit(message.povId, { type: 'revoked', povId: message.povId })
        }
        break
      case 'presence':
      case 'presence_diff':
      case 'typing':
        this.#presence.received(message)
        break
      case 'read':
      case 'reads':
        this.#reads.received(message)
        break
    }
    this.#lastMessage.set(message)
    for (const listener of [...this.#messageListeners]) listener(message)
  }

  /** A new activity counts as unread, is kept for the next reload, and is told to the PoV's listeners. */
  #onActivity (message: ActivityMessage): void {
    const arrival = this.#feed.receive(message)
    if (!arrival) return
    const { povId, pov, activity } = arrival
    this.#reads.activityArrived(pov, message.cursor)
    this.#offline.save(povId)
    this.#feed.emit(povId, { type: 'activity', povId, activity, cursor: message.cursor })
  }

  /** A subscription confirmed: read receipts learn whether they are on, then the listeners hear of any gap. */
  #onSubscribed (message: SubscribedMessage): void {
    const { pov, resync } = this.#feed.confirm(message)
    if (pov) this.#reads.subscribed(message, pov)
    if (resync) this.#feed.emit(message.povId, { type: 'resync', povId: message.povId })
  }

  // ---- reading (the hooks use these) ---------------------------------------------------------

  /** The connection snapshot (the same object until the next published change). */
  readonly getConnection = (): ConnectionSnapshot => this.#connection.get()
  /** Calls `listener` after each published connection change. */
  readonly subscribeConnection = (listener: () => void): (() => void) => this.#connection.subscribe(listener)
  /** The last message from the server (never `pong`), as published. */
  readonly getLastMessage = (): ServerMessage | null => this.#lastMessage.get()
  /** Calls `listener` after each published last-message change. */
  readonly subscribeLastMessage = (listener: () => void): (() => void) => this.#lastMessage.subscribe(listener)

  /** Calls `listener` with every server message (never `pong`), as it arrives, unbatched. */
  onMessage (listener: (message: ServerMessage) => void): () => void {
    this.#messageListeners.add(listener)
    return () => { this.#messageListeners.delete(listener) }
  }

  /**
   * Calls `listener` with each new activity of `povId` (duplicates excluded), with `resync` after a gap that could not
   * be filled (a reconnect whose resume answered `recovered: false`, or the server's in-band `resync`), and with `revoked` when the server ended the user's access to it. It does not watch
   * the PoV by itself: pair it with {@link watch}.
   */
  onActivity (povId: string, listener: (event: ActivityEvent) => void): () => void {
    return this.#feed.onActivity(povId, listener)
  }

  /** The activities of `povId` as published. */
  getActivities (povId: string): ActivitiesSnapshot {
    return this.#povs.get(povId)?.activities.getSnapshot() ?? EMPTY_ACTIVITIES
  }

  /** Calls `listener` after each published change of `povId`'s activities. */
  subscribeActivities (povId: string, listener: () => void): () => void {
    return this.#povs.listen(povId, (pov) => pov.activities.subscribe(listener))
  }

  /** The members of `povId` (from the server's presence messages), sorted by `userId`, as published. */
  getMembers (povId: string): readonly Member[] {
    return this.#povs.get(povId)?.presence.members.get() ?? NO_MEMBERS
  }

  /** Calls `listener` after each published change of `povId`'s members. */
  subscribeMembers (povId: string, listener: () => void): () => void {
    return this.#povs.listen(povId, (pov) => pov.presence.members.subscribe(listener))
  }

  /** The other members typing on `povId`, sorted, as published. */
  getTyping (povId: string): readonly string[] {
    return this.#povs.get(povId)?.presence.typing.get() ?? NOBODY_TYPING
  }

  /** Calls `listener` after each published change of who types on `povId`. */
  subscribeTyping (povId: string, listener: () => void): () => void {
    return this.#povs.listen(povId, (pov) => pov.presence.typing.subscribe(listener))
  }

  /** `povId`'s read receipts (everyone's marks, this user's, the unread count), as published. */
  getReadReceipts (povId: string): ReadReceiptsSnapshot {
    return this.#povs.get(povId)?.reads.value.get() ?? NOTHING_READ
  }

  /** Calls `listener` after each published change of `povId`'s read receipts. */
  subscribeReadReceipts (povId: string, listener: () => void): () => void {
    return this.#povs.listen(povId, (pov) => pov.reads.value.subscribe(listener))
  }

  /**
   * The users whose read mark on `povId` is at or after the activity `activityId`, sorted (this user included). Only
   * activities and marks the client holds can be placed: for others the answer is `[]`.
   */
  readersOf (povId: string, activityId: string): string[] {
    const pov = this.#povs.get(povId)
    return pov ? pov.reads.readersAt(pov.activities.positionOfId(activityId)) : []
  }

  /** The user of this session as the token names it, once a token is known. */
  get userId (): string | undefined {
    return this.#userId
  }

  /**
   * Shows `activity` in `povId`'s list at once, until the server's copy (same `id`) replaces it, `removeOptimistic`
   * drops it, or `timeout` passes.
   * @param [timeout=options.optimisticTimeout] ms it may stay unconfirmed
   */
  addOptimistic (povId: string, activity: ActivityInput, timeout = this.#options.optimisticTimeout): void {
    this.#povs.get(povId)?.activities.addOptimistic(activity, timeout)
  }

  /** Drops an unconfirmed optimistic activity (the app's post failed); false if there was none with that id. */
  removeOptimistic (povId: string, id: string): boolean {
    return this.#povs.get(povId)?.activities.removeOptimistic(id) ?? false
  }

  // ---- internals -----------------------------------------------------------------------------

  #snapshot (): ConnectionSnapshot {
    const machine = this.#machine
    return Object.freeze({
      status: machine.status,
      isConnected: machine.state === 'open',
      authError: machine.authError,
      state: machine.state
    })
  }
}
