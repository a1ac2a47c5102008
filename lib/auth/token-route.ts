/**
 * `GET {tokenRoute}`: the access-token cookie in, a short-lived WebSocket token out.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { StatsCounters } from '../stats.js'
import { TokenRefusal, type RefusalReason, type TokenService } from './tokens.js'

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

export function registerTokenRoute (instance: FastifyInstance, options: ResolvedOptions, tokens: TokenService, stats: StatsCounters): void {
  instance.get(options.tokenRoute, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    // The cookie's name, never its value: a 401 body may end up in a client's log or error report.
    const where = `cookie ${JSON.stringify(options.cookieName)}`
    const cookie = request.cookies[options.cookieName]
    if (!cookie) throw refuseCredential(request, stats, 'missing', 'access token', where)
    try {
      const user = await tokens.verifyAccessToken(cookie, request)
      return tokens.issue(user)
    } catch (err) {
      if (err instanceof TokenRefusal) throw refuseCredential(request, stats, err.reason, 'access token', where)
      throw err
    }
  })
}
