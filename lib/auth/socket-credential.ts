/**
 * One socket's credential over its lifetime: the user its token names, and the token's expiry (the socket is closed
 * with 4002 when it passes). An in-band `auth` with a fresh token moves both, for the same user only: a token for
 * another user closes the socket rather than change who it is. An accepted one has the socket's subscriptions
 * checked again with the refreshed claims (a changed role may have lost access).
 */
import { CloseCode, ErrorCode } from '../../types/wire-constants.js'
import type { FastifyBaseLogger } from 'fastify'
import type { AuthenticatedMessage } from '../../types/messages.js'
import type { PovRealtimeUser } from '../options.js'
import type { Expiring, ExpirySchedule } from './expiry-schedule.js'
import type { SocketIdentity, TokenService } from './tokens.js'

/** What the credential needs of a socket's session (the instance's services too: not kept in each credential). */
export interface CredentialSession {
  readonly log: FastifyBaseLogger
  readonly tokens: TokenService
  /** The instance's token expiries (one timer for every socket). */
  readonly expiries: ExpirySchedule
  /** Answers the client with an `error` (counted as a rejection). */
  sendError (code: ErrorCode, message: string): void
  /** Answers one of the client's requests. */
  answer (message: AuthenticatedMessage): void
  close (code: CloseCode, reason: string): void
  /** A fresh token was accepted: what the socket watches is checked again for the refreshed user. */
  refreshed (): void
}

export class SocketCredential implements Expiring {
  readonly #session: CredentialSession
  #user: PovRealtimeUser
  /**
   * When the current token expires, in whole epoch seconds (the token's `exp`, which the plugin issues whole): a small
   * integer V8 keeps in the object itself until 2038, where epoch milliseconds are a 16-byte heap number per socket.
   * `Math.floor` makes it one (a division's result is a heap number however whole).
   */
  #expiresAtSeconds: number
  heapIndex = -1

  /** Schedules the expiry of the token the socket opened with. */
  constructor (identity: SocketIdentity, session: CredentialSession) {
    this.#session = session
    this.#user = identity.user
    this.#expiresAtSeconds = Math.floor(identity.expiresAt / 1000)
    session.expiries.schedule(this)
  }

  /** When the current token expires (epoch ms). */
  get expiresAt (): number {
    return this.#expiresAtSeconds * 1000
  }

  /** The user, as the latest accepted token describes them. */
  get user (): PovRealtimeUser {
    return this.#user
  }

  /** `auth`: a fresh token for the same user moves the expiry and is answered `authenticated`. */
  refresh (token: string): void {
    let identity: SocketIdentity
    try {
      identity = this.#session.tokens.verifySocketToken(token)
    } catch (refusal) {
      this.#session.log.info({ reason: (refusal as { reason?: string }).reason }, 'pov-realtime: in-band token refused')
      return this.#session.sendError(ErrorCode.INVALID_TOKEN, 'token refused; the connection keeps its current token')
    }
    if (identity.user.userId !== this.#user.userId) {
      this.#session.log.warn({ userId: this.#user.userId }, 'pov-realtime: in-band token for another user refused')
      return this.#session.close(CloseCode.FORBIDDEN, 'identity change refused')
    }
    this.#user = identity.user
    this.#expiresAtSeconds = Math.floor(identity.expiresAt / 1000)
    this.#session.expiries.schedule(this)
    this.#session.answer({ type: 'authenticated', expiresAt: this.expiresAt })
    this.#session.refreshed()
  }

  /** The token expired (called by the schedule). */
  expire (): void {
    this.#session.close(CloseCode.TOKEN_EXPIRED, 'token expired')
  }

  /** The socket closed: its expiry leaves the schedule. */
  stop (): void {
    this.#session.expiries.cancel(this)
  }
}
