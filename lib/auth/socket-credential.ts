/**
 * One socket's credential over its lifetime: the user its token names, and the token's expiry (the socket is closed
 * with 4002 when it passes). An in-band `auth` with a fresh token moves both, for the same user only: a token for
 * another user closes the socket rather than change who it is. An accepted one has the socket's subscriptions
 * checked again with the refreshed claims (a changed role may have lost access).
 */
import { CloseCode, ErrorCode } from '../../types/wire-constants.js'
import type { FastifyBaseLogger } from 'fastify'
import type { AuthenticatedMessage } from '../../types/messages.js'
import { MAX_TIMER_DELAY, type PovRealtimeUser } from '../options.js'
import type { SocketIdentity, TokenService } from './tokens.js'

/** What the credential needs of a socket's session. */
export interface CredentialSession {
  readonly log: FastifyBaseLogger
  /** Answers the client with an `error` (counted as a rejection). */
  sendError (code: ErrorCode, message: string): void
  /** Answers one of the client's requests. */
  answer (message: AuthenticatedMessage): void
  close (code: CloseCode, reason: string): void
  /** A fresh token was accepted: what the socket watches is checked again for the refreshed user. */
  refreshed (): void
}

export class SocketCredential {
  readonly #tokens: TokenService
  readonly #session: CredentialSession
  #user: PovRealtimeUser
  #expiresAt: number
  #expiryTimer: NodeJS.Timeout | undefined

  /** Starts the expiry timer of the token the socket opened with. */
  constructor (identity: SocketIdentity, tokens: TokenService, session: CredentialSession) {
    this.#tokens = tokens
    this.#session = session
    this.#user = identity.user
    this.#expiresAt = identity.expiresAt
    this.#scheduleExpiry()
  }

  /** The user, as the latest accepted token describes them. */
  get user (): PovRealtimeUser {
    return this.#user
  }

  /** `auth`: a fresh token for the same user moves the expiry and is answered `authenticated`. */
  refresh (token: string): void {
    let identity: SocketIdentity
    try {
      identity = this.#tokens.verifySocketToken(token)
    } catch (refusal) {
      this.#session.log.info({ reason: (refusal as { reason?: string }).reason }, 'pov-realtime: in-band token refused')
      return this.#session.sendError(ErrorCode.INVALID_TOKEN, 'token refused; the connection keeps its current token')
    }
    if (identity.user.userId !== this.#user.userId) {
      this.#session.log.warn({ userId: this.#user.userId }, 'pov-realtime: in-band token for another user refused')
      return this.#session.close(CloseCode.FORBIDDEN, 'identity change refused')
    }
    this.#user = identity.user
    this.#expiresAt = identity.expiresAt
    this.#scheduleExpiry()
    this.#session.answer({ type: 'authenticated', expiresAt: this.#expiresAt })
    this.#session.refreshed()
  }

  /** The socket closed: the expiry timer goes. */
  stop (): void {
    clearTimeout(this.#expiryTimer)
  }

  #scheduleExpiry (): void {
    clearTimeout(this.#expiryTimer)
    const delay = this.#expiresAt - Date.now()
    this.#expiryTimer = delay > MAX_TIMER_DELAY
      ? setTimeout(() => this.#scheduleExpiry(), MAX_TIMER_DELAY)
      : setTimeout(() => this.#session.close(CloseCode.TOKEN_EXPIRED, 'token expired'), Math.max(0, delay))
    this.#expiryTimer.unref()
  }
}
