/**
 * How the client reaches the server. The default opens a browser `WebSocket` (or any class with its API, such as
 * the `ws` package's); the test doubles swap in an in-memory transport behind the very same client and hooks.
 */

/** What a connection reports. Handlers may run during `listen()` itself (an in-memory transport opens at once). */
export interface ConnectionEvents {
  open (): void
  /** A text frame. */
  message (data: string): void
  /** The connection is gone (whether it ever opened or not). */
  close (code: number, reason: string): void
}

/** One connection attempt. */
export interface Connection {
  /** Starts reporting events; called once, right after `connect()`. */
  listen (events: ConnectionEvents): void
  send (data: string): void
  /** Closes it; no event is reported afterwards. */
  close (code?: number, reason?: string): void
}

export interface Transport {
  /** Starts a connection to `url` offering `protocols` (the subprotocol and the token). */
  connect (url: string, protocols: readonly string[]): Connection
}

/** The part of the WebSocket API the client uses: the browser's `WebSocket` and the `ws` package's both fit. */
export interface WebSocketLike {
  send (data: string): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'open', listener: () => void): void
  addEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener (type: 'close', listener: (event: { code: number, reason: string }) => void): void
  addEventListener (type: 'error', listener: () => void): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

class WebSocketConnection implements Connection {
  readonly #socket: WebSocketLike
  #events: ConnectionEvents | undefined

  constructor (socket: WebSocketLike) {
    this.#socket = socket
  }

  listen (events: ConnectionEvents): void {
    this.#events = events
    this.#socket.addEventListener('open', () => this.#events?.open())
    this.#socket.addEventListener('message', (event) => {
      // The protocol is JSON text; binary frames carry nothing for us.
      if (typeof event.data === 'string') this.#events?.message(event.data)
    })
    this.#socket.addEventListener('close', (event) => {
      const events = this.#events
      this.#events = undefined
      events?.close(event.code, event.reason)
    })
    // An error is always followed by a close, which is where the client reacts.
    this.#socket.addEventListener('error', () => {})
  }

  send (data: string): void {
    this.#socket.send(data)
  }

  close (code = 1000, reason = ''): void {
    this.#events = undefined
    try {
      this.#socket.close(code, reason)
    } catch {
      // Closing a socket that is still connecting throws in some implementations; it is abandoned either way.
    }
  }
}

/**
 * The default transport: a WebSocket per connection.
 * @param [WebSocketImpl=globalThis.WebSocket] the class to instantiate (looked up when connecting, never at import)
 */
export function webSocketTransport (WebSocketImpl?: WebSocketConstructor): Transport {
  return {
    connect (url, protocols) {
      const Impl = WebSocketImpl ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined)
      if (!Impl) throw new Error('no WebSocket implementation: pass one as the WebSocket option')
      return new WebSocketConnection(new Impl(url, [...protocols]))
    }
  }
}
