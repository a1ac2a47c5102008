/**
 * One socket's fairness limits as the operator sees them: every trip is counted in `stats().limitTrips`, and the first
 * trip of each limit on the socket is logged at warn with the socket's user id (never its token), so that a client
 * that goes on hitting a limit costs one log line, not one per message.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { LimitName, StatsCounters } from '../stats.js'

/** The limits a socket itself can trip, and what the log line says of each. */
const MESSAGES = {
  maxSubscriptions: 'pov-realtime: a socket asked to watch more PoVs than maxSubscriptions; refused with SUBSCRIPTION_LIMIT',
  statusChanges: 'pov-realtime: a socket changes its status faster than the per-socket limit; the changes are held back'
} as const satisfies Partial<Record<LimitName, string>>

export type SocketLimit = keyof typeof MESSAGES

export class SocketLimitTrips {
  readonly #stats: StatsCounters
  readonly #log: FastifyBaseLogger
  readonly #userId: string
  /** Limits already logged for this socket; made at the first trip (most sockets never trip one). */
  #warned: Set<SocketLimit> | undefined

  constructor (stats: StatsCounters, log: FastifyBaseLogger, userId: string) {
    this.#stats = stats
    this.#log = log
    this.#userId = userId
  }

  /** `limit` refused or held back something of this socket; `details` go to the first trip's log line. */
  trip (limit: SocketLimit, details: Record<string, unknown> = {}): void {
    this.#stats.countLimitTrip(limit)
    this.#warned ??= new Set()
    if (this.#warned.has(limit)) return
    this.#warned.add(limit)
    this.#log.warn({ userId: this.#userId, limit, ...details }, MESSAGES[limit])
  }
}
