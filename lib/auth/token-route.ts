/**
 * `GET {tokenRoute}`: the access-token cookie in, a short-lived WebSocket token out. Its response schema (the 200 and
 * the error bodies) documents it for @fastify/swagger and the like, and serializes the answer.
 */
import type { FastifyInstance } from 'fastify'
import { HttpErrorBody, TokenResponse } from '../../types/schemas.js'
import type { ResolvedOptions } from '../options.js'
import type { StatsCounters } from '../stats.js'
import { refuseCredential } from './credential-refusal.js'
import { TokenRefusal, type TokenService } from './tokens.js'

export function registerTokenRoute (instance: FastifyInstance, options: ResolvedOptions, tokens: TokenService, stats: StatsCounters): void {
  const schema = {
    summary: 'A short-lived WebSocket token for the user of the access cookie',
    response: { 200: TokenResponse, 401: HttpErrorBody, '5xx': HttpErrorBody }
  }
  instance.get(options.tokenRoute, { schema }, async (request, reply) => {
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
