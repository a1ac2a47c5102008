/**
 * The in-memory stand-in for the server behind every mock client: it opens their connections (or holds them while
 * "disconnected"), records what they send, and delivers what a test simulates. Each mock client is a real
 * `RealtimeClient`; only its transport, token source and clock are swapped, so the hooks run unchanged.
 */
import type { ServerMessage } from '../../types/messages.js'
import type { RealtimeClientOptions } from '../client/client-options.js'
import type { ConnectionStatus } from '../client/connection/connection-machine.js'
import { clearPersistedRealtimeState } from '../client/persistence/persisted-state.js'
import { RealtimeClient, type OutgoingMessage } from '../client/realtime-client.js'
import type { Timers } from '../client/connection/timers.js'
import type { SocketToken, TokenProvider } from '../client/connection/token-source.js'
import type { Connection, ConnectionEvents, Transport } from '../client/connection/transport.js'

/** The user of a mock client unless its options name another. */
export const MOCK_USER_ID = 'test-user'

function base64url (text: string): string {
  const binary = String.fromCharCode(...new TextEncoder().encode(text))
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * A token that never expires (nothing is fetched), shaped like the plugin's so that the client reads the user from it
 * as it does in production. Unsigned: it never reaches a server.
 */
function mockTokens (userId: string): TokenProvider {
  const payload = base64url(JSON.stringify({ userId, sub: userId, aud: 'pov-realtime' }))
  const token: SocketToken = Object.freeze({ token: `${base64url('{"alg":"none","typ":"JWT"}')}.${payload}.mock`, expiresAt: Number.POSITIVE_INFINITY })
  return {
    usable: () => token,
    fetch: async () => token,
    refreshAt: () => Number.POSITIVE_INFINITY,
    invalidate: () => {}
  }
}

/** The real timers, except that under Node a pending one never keeps the test process alive. */
const unrefTimers: Timers = {
  setTimeout (callback, ms) {
    const handle = globalThis.setTimeout(callback, ms)
    ;(handle as { unref?: () => void }).unref?.()
    return handle
  },
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
  now: () => Date.now()
}

class MockConnection implements Connection {
  readonly #server: MockServer
  #events: ConnectionEvents | undefined
  #open = false

  constructor (server: MockServer) {
    this.#server = server
  }

  get isOpen (): boolean {
    return this.#open
  }

  listen (events: ConnectionEvents): void {
    this.#events = events
    this.#server.connections.add(this)
    if (this.#server.connected) this.open()
  }

  /** Opens a held connection. */
  open (): void {
    if (this.#open || !this.#events) return
    this.#open = true
    this.#events.open()
  }

  send (data: string): void {
    if (this.#open) this.#server.sent.push(data)
  }

  close (): void {
    this.#events = undefined
    this.#open = false
    this.#server.connections.delete(this)
  }

  deliver (data: string): void {
    if (this.#open) this.#events?.message(data)
  }

  /** The network dropped it (the client hears a 1006 close), or the server closed it with `code`. */
  drop (code = 1006, reason = ''): void {
    const events = this.#events
    this.close()
    events?.close(code, reason)
  }
}

/**
 * Client options the tests may set on a `MockWebSocketProvider`, and `userId`: the user the mock session belongs to
 * (default `'test-user'`), whose own `read` events set `readCursor` and whose typing is never listed. `persist` is
 * `false` unless set (each test starts clean); `timers` and `document` let a test drive time and the page.
 */
export type MockClientOptions = Pick<RealtimeClientOptions,
  'activityLimit' | 'optimisticTimeout' | 'maxQueuedMessages' | 'linger' | 'persist' | 'persistMaxBytes' |
  'persistActivities' | 'idleTimeout' | 'typingInterval' | 'typingExpiry' | 'document' | 'timers'> & { userId?: string }

class MockServer {
  connected = true
  readonly connections = new Set<MockConnection>()
  readonly clients = new Set<RealtimeClient>()
  sent: string[] = []
  #defaultClient: RealtimeClient | undefined
  readonly #transport: Transport = { connect: () => new MockConnection(this) }

  /** A client wired to this mock: no socket, no fetch, no ping, changes shown synchronously. */
  createClient ({ userId = MOCK_USER_ID, ...options }: MockClientOptions = {}): RealtimeClient {
    return new RealtimeClient({
      socketUrl: 'ws://pov-realtime.mock/ws',
      persist: false,
      timers: unrefTimers,
      ...options,
      transport: this.#transport,
      tokens: mockTokens(userId),
      network: null,
      pingInterval: false,
      batchWindow: 0
    })
  }

  /** Makes `client` answer the simulate* calls; returns the function that stops it. */
  register (client: RealtimeClient): () => void {
    this.clients.add(client)
    return () => { this.clients.delete(client) }
  }

  /** The client `mockUseWebSocket` uses: one for the whole test run, always registered. */
  get defaultClient (): RealtimeClient {
    if (!this.#defaultClient) {
      this.#defaultClient = this.createClient()
      this.register(this.#defaultClient)
    }
    return this.#defaultClient
  }

  setStatus (status: ConnectionStatus): void {
    switch (status) {
      case 'disconnected':
        this.connected = false
        for (const connection of [...this.connections]) if (connection.isOpen) connection.drop()
        return
      case 'reconnected':
        this.connected = true
        for (const client of this.clients) client.reconnect()
        return
      case 'connected':
        this.connected = true
        for (const client of this.clients) client.restart()
        return
      default:
        throw new TypeError(`simulateConnectionStatus: expected 'connected', 'disconnected' or 'reconnected', got ${JSON.stringify(status)}`)
    }
  }

  deliver (message: ServerMessage | { type: string, [field: string]: unknown } | string): void {
    const data = typeof message === 'string' ? message : JSON.stringify(message)
    for (const connection of [...this.connections]) connection.deliver(data)
  }

  /**
   * The server revoked the user's access: to `povId` (an `unsubscribed` with `reason: 'revoked'`), or to everything
   * (every open connection closed with 4003).
   */
  revoke (povId: string | undefined): void {
    if (povId !== undefined) return this.deliver({ type: 'unsubscribed', povId, reason: 'revoked' })
    for (const connection of [...this.connections]) if (connection.isOpen) connection.drop(4003, 'access revoked')
  }

  sentMessages (): OutgoingMessage[] {
    return this.sent.map((data) => JSON.parse(data) as OutgoingMessage)
  }

  reset (): void {
    clearPersistedRealtimeState()
    this.connected = true
    for (const client of this.clients) {
      client.reset()
      client.restart()
    }
    this.sent = []
  }
}

/** The one mock server of this module instance. */
export const mockServer = new MockServer()
