/**
 * `GET {wsRoute}`: the upgrade is checked (Origin, then token, then the user's sockets against `maxSocketsPerUser`)
 * before any socket opens, in an `onRequest` hook; a refusal is an HTTP answer (400, 401, 403, 429), never an
 * opened-then-closed socket. Once open, the socket is handed to a session with a small view of its request, and the
 * request itself is let go (`upgrade-handover.ts`).
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadHandshakeError, ForbiddenOriginError, TooManySocketsError } from '../errors.js'
import { refuseCredential } from '../auth/credential-refusal.js'
import { forgetHandshakeToken, takeHandshakeToken } from '../auth/handshake-token.js'
import type { RealtimeHub } from '../realtime-hub.js'
import { TokenRefusal, type SocketIdentity } from '../auth/tokens.js'
import { releaseUpgrade, viewOfUpgrade } from './upgrade-handover.js'

/** What the upgrade's check found, for the route's handler. */
interface AcceptedUpgrade {
  readonly identity: SocketIdentity
  /** The response Node assigned to the connection, detached once the socket is open. */
  readonly response: ServerResponse
}

export function registerSocketRoute (instance: FastifyInstance, hub: RealtimeHub): void {
  const { options, stats } = hub
  const accepted = new WeakMap<FastifyRequest, AcceptedUpgrade>()
  let warnedKeptRequest = false

  async function checkUpgrade (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!request.ws) return // a plain GET: @fastify/websocket answers it (404)
    const origin = request.headers.origin
    if (options.isOriginAllowed && origin !== undefined && !options.isOriginAllowed(origin)) {
      stats.authFailures++
      request.log.info({ origin }, 'pov-realtime: upgrade from a disallowed origin refused')
      throw new ForbiddenOriginError()
    }
    const found = takeHandshakeToken(request.raw)
    if ('problem' in found) {
      stats.authFailures++
      request.log.info({ reason: 'bad-handshake' }, 'pov-realtime: websocket token refused')
      throw new BadHandshakeError(found.problem)
    }
    if (!found.token) throw refuseCredential(request, stats, 'missing', 'websocket token')
    let identity: SocketIdentity
    try {
      identity = hub.tokens.verifySocketToken(found.token)
      forgetHandshakeToken(request.raw)
    } catch (err) {
      if (err instanceof TokenRefusal) throw refuseCredential(request, stats, err.reason, 'websocket token')
      throw err
    }
    if (!hub.admitSocket(identity.user.userId, request.raw.socket, request.log)) {
      throw new TooManySocketsError(options.maxSocketsPerUser)
    }
    accepted.set(request, { identity, response: reply.raw })
  }

  instance.get(options.wsRoute, { websocket: true, onRequest: checkUpgrade }, (socket, request) => {
    // Our sockets are ours alone: an app that loops over `websocketServer.clients` (to broadcast, or in its own
    // preClose) must not write to them or close them without the protocol's codes. ws only uses the set for that.
    instance.websocketServer.clients.delete(socket)
    const { identity, response } = accepted.get(request)!
    const connection = request.raw.socket as Socket
    if (!releaseUpgrade(socket, connection, response) && !warnedKeptRequest) {
      warnedKeptRequest = true
      request.log.warn('pov-realtime: @fastify/websocket\'s socket error listener is not the one expected; each socket keeps its upgrade request in memory')
    }
    // The view is for `authorizeSubscription` alone: without it, no copy of the headers is kept for the socket's life.
    const upgrade = options.authorizeSubscription ? viewOfUpgrade(request, options.requestDecorators) : undefined
    hub.accept({ ws: socket, connection, log: request.log, upgrade, identity })
  })
}
