/**
 * Where the WebSocket token comes from: the app's token route, called with the session cookie. A token is reused
 * while it has life left and replaced a third of its lifetime (at most five minutes) before it expires.
 */
import type { Timers } from './timers.js'

/** A WebSocket token as the token route answers it. */
export interface SocketToken {
  readonly token: string
  /** Expiry, in ms since the epoch. */
  readonly expiresAt: number
}

/** What the client needs from a source of tokens. The test doubles supply one that never expires. */
export interface TokenProvider {
  /** A cached token with enough life left to connect with, if any (synchronous, so a reconnect can be too). */
  usable (): SocketToken | undefined
  /** Fetches a new token; concurrent calls share one request. Rejects with {@link AuthError} when the session is gone. */
  fetch (): Promise<SocketToken>
  /** When `token` should be replaced (ms since the epoch); `Infinity` for never. */
  refreshAt (token: SocketToken): number
  /** Forgets the cached token (the server refused it, or it expired on a live socket). */
  invalidate (): void
}

/** The token route refused the session (401 or 403): the user is signed out. The client stops reconnecting. */
export class AuthError extends Error {
  readonly status: number

  constructor (status: number, message: string) {
    super(message)
    this.name = 'AuthError'
    this.status = status
  }
}

/** The token route could not be reached or answered something unexpected; the client retries with backoff. */
export class TokenFetchError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TokenFetchError'
  }
}

/** The longest a token is refreshed ahead of its expiry. */
const MAX_REFRESH_MARGIN = 5 * 60_000

interface CachedToken extends SocketToken {
  /** When this client received it (its own clock), for the lifetime estimate. */
  readonly receivedAt: number
}

export interface HttpTokenProviderOptions {
  /** The token route, absolute or relative to the page. */
  url: string
  /** The `fetch` to call; looked up on `globalThis` when called if absent. */
  fetch?: typeof globalThis.fetch
  timers: Timers
}

/** Tokens from the app's token route (`GET`, cookies included). */
export class HttpTokenProvider implements TokenProvider {
  readonly #options: HttpTokenProviderOptions
  #cached: CachedToken | undefined
  #inFlight: Promise<SocketToken> | undefined

  constructor (options: HttpTokenProviderOptions) {
    this.#options = options
  }

  usable (): SocketToken | undefined {
    const cached = this.#cached
    return cached && this.#options.timers.now() < this.refreshAt(cached) ? cached : undefined
  }

  fetch (): Promise<SocketToken> {
    this.#inFlight ??= this.#request().finally(() => { this.#inFlight = undefined })
    return this.#inFlight
  }

  refreshAt (token: SocketToken): number {
    const cached = this.#cached
    // The lifetime as estimated when the token arrived (a token handed in from elsewhere: from now).
    const receivedAt = cached && cached.token === token.token ? cached.receivedAt : this.#options.timers.now()
    const lifetime = Math.max(0, token.expiresAt - receivedAt)
    return token.expiresAt - Math.min(lifetime / 3, MAX_REFRESH_MARGIN)
  }

  invalidate (): void {
    this.#cached = undefined
  }

  async #request (): Promise<SocketToken> {
    const doFetch = this.#options.fetch ?? globalThis.fetch
    let response: Response
    try {
      response = await doFetch(this.#options.url, {
        method: 'GET',
        credentials: 'include',
        cache: 'no-store',
        headers: { accept: 'application/json' }
      })
    } catch (err) {
      throw new TokenFetchError(`token request failed: ${(err as Error)?.message ?? err}`, { cause: err })
    }
    if (response.status === 401 || response.status === 403) {
      throw new AuthError(response.status, await errorMessage(response))
    }
    if (!response.ok) throw new TokenFetchError(`token route answered ${response.status}`)
    const body = await response.json().catch(() => undefined) as Partial<SocketToken> | undefined
    if (typeof body?.token !== 'string' || body.token === '' || typeof body.expiresAt !== 'number') {
      throw new TokenFetchError('token route answered without { token, expiresAt }')
    }
    this.#cached = { token: body.token, expiresAt: body.expiresAt, receivedAt: this.#options.timers.now() }
    return this.#cached
  }
}

async function errorMessage (response: Response): Promise<string> {
  const body = await response.json().catch(() => undefined) as { message?: unknown } | undefined
  return typeof body?.message === 'string' ? body.message : `token route answered ${response.status}`
}
