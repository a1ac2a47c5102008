/**
 * `GET {tokenRoute}`: the access-token cookie in, a short-lived WebSocket token out.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { StatsCounters } from '../stats.js'
import { TokenRefusal, type RefusalReason, type TokenService } from './tokens.js'

/** Counts and logs a refused credential (its reason and the request id, never the token), then returns the 401. */
export function refuseCredential (request: FastifyRequest, stats: StatsCounters, reason: RefusalReason, what: string): Error {
  stats.authFailures++
  request.log.info({ reason }, `pov-realtime: ${what} refused`)
  const message = reason === 'missing' ? `No ${what}` : reason === 'expired' ? `The ${what} has expired` : `Invalid ${what}`
  return new UnauthorizedError(message)
}

export function registerTokenRoute (instance: FastifyInstance, options: ResolvedOptions, tokens: TokenService, stats: StatsCounters): void {
  instance.get(options.tokenRoute, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const cookie = request.cookies[options.cookieName]
    if (!cookie) throw refuseCredential(request, stats, 'missing', 'access token')
    try {
      const user = await tokens.verifyAccessToken(cookie, request)
      return tokens.issue(user)
    } catch (err) {
      if (err instanceof TokenRefusal) throw refuseCredential(request, stats, err.reason, 'access token')
      throw err
    }
  })
}
