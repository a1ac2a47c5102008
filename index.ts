/**
 * fastify-pov-realtime: real-time activity feeds for Fastify over WebSockets.
 * Wires the pieces in `lib/`; see docs/options.md and docs/protocol.md.
 */
import fastifyCookie from '@fastify/cookie'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import fp from 'fastify-plugin'
import { stripTokensAhead } from './lib/auth/handshake-token.js'
import { resolveOptions, type PovRealtimeOptions } from './lib/options.js'
import { RealtimeHub } from './lib/realtime-hub.js'
import type { BroadcastResult, PovRealtimeApi } from './lib/realtime-api.js'
import { closeCodeOfFrameError } from './lib/socket/frame-errors.js'
import { registerSocketRoute } from './lib/socket/socket-route.js'
import { registerTokenRoute } from './lib/auth/token-route.js'
import { createTokenService } from './lib/auth/tokens.js'
import type { ActivityInput } from './types/activity.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's live state: `stats()`, `presence(povId)`, `revoke(...)`, and the read-receipt functions (`markRead`, `reads`, `unreadCounts`). */
    povRealtime: PovRealtimeApi
    /**
     * Publishes an activity to every subscriber of its PoV. Rejects (never throws synchronously) with
     * `POV_REALTIME_INVALID_ACTIVITY` when it is not a valid activity; then it reaches no one.
     */
    broadcastActivity (activity: ActivityInput): Promise<BroadcastResult>
  }
}

/**
 * @fastify/websocket's socket error handler, for when this plugin registers it: a frame ws refused (too big, not
 * UTF-8, bad framing) is the client's fault, already closed by ws with its RFC 6455 code and counted by the session,
 * so it is not logged as a server error.
 */
function onSocketError (error: Error & { code?: string }, socket: WebSocket, request: FastifyRequest): void {
  if (closeCodeOfFrameError(error) === undefined) request.log.error({ err: error }, 'websocket error')
  socket.terminate()
}

/** The smallest secret length that gives HS256 its full strength (256 bits). */
const RECOMMENDED_SECRET_LENGTH = 32

const povRealtimePlugin: FastifyPluginAsync<PovRealtimeOptions> = async (fastify, rawOptions) => {
  const options = resolveOptions(rawOptions)
  if (options.secret.length < RECOMMENDED_SECRET_LENGTH) {
    fastify.log.warn(`pov-realtime: the secret is shorter than ${RECOMMENDED_SECRET_LENGTH} characters; HS256 wants 256 random bits`)
  }
  const hub = new RealtimeHub(options, fastify.log)
  fastify.decorate('povRealtime', {
    stats: () => hub.snapshot(),
    presence: async (povId) => await hub.requirePresence('presence').members(povId),
    markRead: async (userId, povId, cursor) => await hub.requireReadReceipts('markRead').markRead(userId, povId, cursor),
    reads: async (povId) => await hub.requireReadReceipts('reads').reads(povId),
    unreadCounts: async (userId, povIds) => await hub.requireReadReceipts('unreadCounts').unreadCounts(userId, povIds),
    revoke: async (target) => await hub.revoke(target)
  } satisfies PovRealtimeApi)
  fastify.decorate('broadcastActivity', (activity: ActivityInput) => hub.broadcast(activity))

  // Our sockets get their 1001 before @fastify/websocket's own preClose closes its clients without a code.
  fastify.addHook('preClose', () => hub.closeSockets())
  if (!fastify.hasDecorator('websocketServer')) {
    // At the app's level, as mercurius does, not in our encapsulated context: @fastify/websocket routes every upgrade
    // the server receives, and its hooks (which close refused and unrouted upgrades) must apply to all of them.
    // An app that uses @fastify/websocket itself registers it before this plugin.
    await fastify.register(fastifyWebsocket, {
      options: { maxPayload: options.maxPayload },
      errorHandler: onSocketError
    })
  }

  let unstrip: (() => void) | undefined
  // Routes, their error handler and the cookie plugin (when we add it) live in an encapsulated context of their own,
  // so they neither clash with nor leak into an app that registered @fastify/cookie itself.
  await fastify.register(async function povRealtimeRoutes (instance: FastifyInstance) {
    if (!instance.hasRequestDecorator('cookies')) await instance.register(fastifyCookie)
    instance.setErrorHandler((err: FastifyError, request, reply) => {
      const statusCode = err.statusCode ?? 500
      if (statusCode >= 500) request.log.error({ err }, 'pov-realtime: request failed')
      reply.code(statusCode).send({
        statusCode,
        code: statusCode >= 500 ? 'POV_REALTIME_INTERNAL' : err.code,
        error: statusCode >= 500 ? 'Internal Server Error' : err.name,
        message: statusCode >= 500 ? 'Internal server error' : err.message
      })
    })
    instance.addHook('onRoute', (route) => {
      if (route.websocket && route.path === options.wsRoute) unstrip = stripTokensAhead(fastify.server, route.url)
    })
    const tokens = createTokenService(options)
    await hub.start(tokens)
    registerTokenRoute(instance, options, tokens, hub.stats)
    registerSocketRoute(instance, hub)
  })

  fastify.addHook('onClose', async () => {
    unstrip?.()
    await hub.closeBroker()
  })
}

/** The plugin. Register it with at least `{ secret }`. */
export const povRealtime = fp(povRealtimePlugin, { fastify: '5.x', name: 'fastify-pov-realtime' })
export default povRealtime

export type { PovRealtimeOptions, PovRealtimeUser, PresenceOptions, RateLimitOptions, UpgradeRequestView } from './lib/options.js'
export { DEFAULTS } from './lib/options.js'
export type { BroadcastResult, PovRealtimeApi } from './lib/realtime-api.js'
export type { ReadState } from './lib/read-receipts/read-receipts-feature.js'
export type { LimitName, PovRealtimeStats } from './lib/stats.js'
export type {
  Broker, BrokerEntry, BrokerLimit, BrokerSink, BrokerStartContext, ControlMessage, HistoryOptions, MemberState,
  PresenceRelay, PresenceSink, ReadMarkStore, ReadSink, RemoteMember, Replay
} from './lib/broker.js'
export * as errors from './lib/errors.js'
export * from './types/index.js'
