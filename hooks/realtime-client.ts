/**
 * The framework-free client: one connection (see `connection-machine.ts`) and what the app does over it, namely
 * which PoVs are watched and by how many, their activities, the last message, and what to send once connected again.
 * The React hooks are thin views of it; it works just as well without React.
 */
import type { Activity, ActivityInput } from '../types/activity.js'
import type { ClientMessage, ServerMessage } from '../types/messages.js'
import { ActivityStore, EMPTY_ACTIVITIES, type ActivitiesSnapshot } from './activity-store.js'
import { BatchScheduler } from './batch-scheduler.js'
import { BoundedQueue } from './bounded-queue.js'
import { resolveClientOptions, resolveSocketUrl, type RealtimeClientOptions, type ResolvedClientOptions } from './client-options.js'
import { ConnectionMachine, type ConnectionState, type ConnectionStatus } from './connection-machine.js'
import { PublishedValue } from './published-value.js'
import { HttpTokenProvider, type AuthError, type TokenProvider } from './token-source.js'
import { webSocketTransport } from './transport.js'
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
  /** The machine's finer state (`'waiting'` between attempts, `'auth-failed'`, …). */
  readonly state: ConnectionState
}

/** What a per-PoV listener hears: each new activity, and `resync` when a resume could not fill the gap. */
export type ActivityEvent =
  | { readonly type: 'activity', readonly povId: string, readonly activity: Activity, readonly cursor: string }
  | { readonly type: 'resync', readonly povId: string }

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
  readonly #watches = new WatchRegistry()
  readonly #queue: BoundedQueue<string>
  readonly #stores = new Map<string, ActivityStore>()
  readonly #scheduler: BatchScheduler
  readonly #connection: PublishedValue<ConnectionSnapshot>
  readonly #lastMessage: PublishedValue<ServerMessage | null>
  readonly #messageListeners = new Set<(message: ServerMessage) => void>()
  readonly #activityListeners = new Map<string, Set<(event: ActivityEvent) => void>>()
  #consumers = 0
  #lingerTimer: unknown

  /** See {@link RealtimeClientOptions} for the options and their defaults. */
  constructor (options: RealtimeClientOptions = {}) {
    const resolved = this.#options = resolveClientOptions(options)
    const { timers } = resolved
    this.#queue = new BoundedQueue(resolved.maxQueuedMessages)
    this.#scheduler = new BatchScheduler(resolved.batchWindow, timers)
    const schedule = (flush: () => void) => this.#scheduler.schedule(flush)
    this.#connection = new PublishedValue(DISCONNECTED, schedule)
    this.#lastMessage = new PublishedValue<ServerMessage | null>(null, schedule)
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
      opened: () => this.#onOpened(),
      message: (message) => this.#onMessage(message),
      changed: () => this.#connection.set(this.#snapshot())
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
    let released = false
    return () => {
      if (released) return
      released = true
      if (--this.#consumers > 0) return
      this.#lingerTimer = this.#options.timers.setTimeout(() => {
        this.#lingerTimer = undefined
        if (this.#consumers === 0) this.close()
      }, this.#options.linger)
    }
  }

  /**
   * Closes the socket now and forgets the watched PoVs, their activities, the queued messages and the token
   * (the next session may be another user's). A later `retain()` starts afresh.
   */
  close (): void {
    this.#machine.stop()
    this.#tokens.invalidate()
    this.#forget()
  }

  /**
   * Connects now: after an auth error (once the user has signed in again), to cut a backoff wait short, or to
   * replace the current connection. Watched PoVs are resubscribed, resuming after their last cursor.
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

  #forget (): void {
    this.#watches.clear()
    this.#queue.clear()
    for (const [povId, store] of this.#stores) {
      // A mounted component still reads this store: empty it rather than orphan it.
      store.clear()
      if (store.listenerCount === 0) this.#releaseStore(povId)
    }
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
      return this.#addWatcher(povId, typeof since === 'string' ? since : undefined)
    }
    if (type === 'unsubscribe' && typeof povId === 'string' && this.#watches.isWatched(povId)) {
      return this.#removeWatcher(povId)
    }
    const text = JSON.stringify(message)
    if (!this.#machine.send(text)) this.#queue.push(text)
  }

  /** Watches `povId` until the returned function is called: one `subscribe` however many watch it. */
  watch (povId: string): () => void {
    this.#addWatcher(povId, undefined)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#removeWatcher(povId)
    }
  }

  #addWatcher (povId: string, since: string | undefined): void {
    this.#storeFor(povId)
    if (!this.#watches.add(povId)) return
    if (since !== undefined) this.#watches.advance(povId, since)
    // If the socket is down, the subscription goes out with all the others once it opens.
    this.#machine.send(JSON.stringify(since === undefined ? { type: 'subscribe', povId } : { type: 'subscribe', povId, since }))
  }

  #removeWatcher (povId: string): void {
    if (!this.#watches.remove(povId)) return
    // On the next microtask, so that an unmount followed by a remount in the same commit changes nothing.
    queueMicrotask(() => {
      if (!this.#watches.settle(povId)) return
      this.#machine.send(JSON.stringify({ type: 'unsubscribe', povId }))
      if (this.#stores.get(povId)?.listenerCount === 0) this.#releaseStore(povId)
    })
  }

  // ---- what arrives --------------------------------------------------------------------------

  #onOpened (): void {
    for (const subscribe of this.#watches.subscriptions()) this.#machine.send(JSON.stringify(subscribe))
    for (const text of this.#queue.drain()) this.#machine.send(text)
  }

  #onMessage (message: ServerMessage): void {
    switch (message.type) {
      case 'activity': {
        const activity = message.data as Activity | undefined
        const povId = activity?.povId
        if (typeof povId !== 'string' || typeof activity?.id !== 'string' || !this.#watches.has(povId)) break
        this.#watches.advance(povId, message.cursor)
        if (this.#stores.get(povId)?.add(activity) !== false) {
          this.#emit(povId, { type: 'activity', povId, activity, cursor: message.cursor })
        }
        break
      }
      case 'subscribed': {
        this.#stores.get(message.povId)?.setError(null)
        const missedUnknown = this.#watches.confirm(message.povId)
        if (message.recovered === false || missedUnknown) this.#emit(message.povId, { type: 'resync', povId: message.povId })
        break
      }
      case 'error':
        if (message.povId !== undefined) this.#stores.get(message.povId)?.setError(message)
        break
    }
    this.#lastMessage.set(message)
    for (const listener of [...this.#messageListeners]) listener(message)
  }

  #emit (povId: string, event: ActivityEvent): void {
    const listeners = this.#activityListeners.get(povId)
    if (!listeners) return
    for (const listener of [...listeners]) {
      try {
        listener(event)
      } catch (err) {
        // The app's callback failing must not stop the others, nor the client: report it without catching it.
        queueMicrotask(() => { throw err })
      }
    }
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
   * Calls `listener` with each new activity of `povId` (duplicates excluded) and with `resync` after a reconnect
   * whose resume could not fill the gap. It does not watch the PoV by itself: pair it with {@link watch}.
   */
  onActivity (povId: string, listener: (event: ActivityEvent) => void): () => void {
    let listeners = this.#activityListeners.get(povId)
    if (!listeners) this.#activityListeners.set(povId, listeners = new Set())
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0 && this.#activityListeners.get(povId) === listeners) this.#activityListeners.delete(povId)
    }
  }

  /** The activities of `povId` as published. */
  getActivities (povId: string): ActivitiesSnapshot {
    return this.#stores.get(povId)?.getSnapshot() ?? EMPTY_ACTIVITIES
  }

  /** Calls `listener` after each published change of `povId`'s activities. */
  subscribeActivities (povId: string, listener: () => void): () => void {
    const store = this.#storeFor(povId)
    const unsubscribe = store.subscribe(listener)
    return () => {
      unsubscribe()
      if (store.listenerCount === 0 && !this.#watches.has(povId) && this.#stores.get(povId) === store) {
        this.#releaseStore(povId)
      }
    }
  }

  /**
   * Shows `activity` in `povId`'s list at once, until the server's copy (same `id`) replaces it, `removeOptimistic`
   * drops it, or `timeout` passes.
   * @param [timeout=options.optimisticTimeout] ms it may stay unconfirmed
   */
  addOptimistic (povId: string, activity: ActivityInput, timeout = this.#options.optimisticTimeout): void {
    this.#stores.get(povId)?.addOptimistic(activity, timeout)
  }

  /** Drops an unconfirmed optimistic activity (the app's post failed); false if there was none with that id. */
  removeOptimistic (povId: string, id: string): boolean {
    return this.#stores.get(povId)?.removeOptimistic(id) ?? false
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

  #storeFor (povId: string): ActivityStore {
    let store = this.#stores.get(povId)
    if (!store) {
      store = new ActivityStore({
        capacity: this.#options.activityLimit,
        timers: this.#options.timers,
        schedule: (flush) => this.#scheduler.schedule(flush)
      })
      this.#stores.set(povId, store)
    }
    return store
  }

  #releaseStore (povId: string): void {
    this.#stores.get(povId)?.dispose()
    this.#stores.delete(povId)
  }
}
