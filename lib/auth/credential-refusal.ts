/**
 * The one answer to a refused credential, shared by the token route (the access-token cookie) and the socket route
 * (the WebSocket token): counted, logged without the credential, and a 401 that says only what was wrong.
 */
import type { FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../errors.js'
import type { StatsCounters } from '../stats.js'
import type { RefusalReason } from './tokens.js'

/**
 * Counts and logs a refused credential (its reason and the request id, never the token), then returns the 401.
 * `where` names the place the credential was looked for (a cookie's name), so that a developer sees which one.
 */
export function refuseCredential (request: FastifyRequest, stats: StatsCounters, reason: RefusalReason, what: string, where?: string): Error {
  stats.authFailures++
  request.log.info({ reason }, `pov-realtime: ${what} refused`)
  const message = reason === 'missing' ? `No ${what}` : reason === 'expired' ? `The ${what} has expired` : `Invalid ${what}`
  return new UnauthorizedError(where === undefined ? message : `${message} (${where})`)
}
