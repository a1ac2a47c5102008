/**
 * The hand-over from the upgrade request to the socket's session: what the session keeps of the request, and letting
 * the rest go. An idle connection should cost little more than plain `ws`'s, yet three things would keep the upgrade's
 * `FastifyRequest`, its reply, the `ServerResponse` and the raw request bytes (the `head` buffer is a slice of them)
 * alive for as long as the socket lives:
 *
 * - @fastify/websocket's per-socket `error` listener, a closure over the request and reply (it passes them to its
 *   `errorHandler`); the session installs its own, which does what the plugin's `errorHandler` did;
 * - the connection's `_httpMessage`, the `ServerResponse` Node assigned to it (which holds the request), released with
 *   `ServerResponse.detachSocket`, as Node does itself once a response is done;
 * - the session handing the request to `authorizeSubscription`: it hands over a small copy instead
 *   ({@link UpgradeRequestView}: `id`, `ip`, `url`, `headers`, and the decorations the app names in `requestDecorators`).
 *
 * test/upgrade-handover.test.ts proves the request collectable once a socket is open, and fails if an update of
 * @fastify/websocket changes the listener removed here.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { UpgradeRequestView } from '../options.js'

/** Headers of the handshake itself, of no use once the socket is open. */
function isHandshakeHeader (name: string): boolean {
  return name === 'connection' || name === 'upgrade' || name.startsWith('sec-websocket-')
}

/** The copy of the upgrade request that `authorizeSubscription` receives for the socket's whole life. */
export function viewOfUpgrade (request: FastifyRequest, decorators: readonly string[]): UpgradeRequestView {
  const headers: Record<string, string | string[] | undefined> = {}
  for (const name of Object.keys(request.headers)) {
    if (!isHandshakeHeader(name)) headers[name] = request.headers[name]
  }
  const view: Record<string, unknown> = { id: request.id, ip: request.ip, url: request.url, headers: Object.freeze(headers) }
  const decorated = request as unknown as Record<string, unknown>
  for (const name of decorators) view[name] = decorated[name]
  return Object.freeze(view) as UpgradeRequestView
}

/**
 * Drops what ties the open socket to its upgrade request: @fastify/websocket's `error` listener (when it is the one
 * expected: the only `error` listener of the socket at this point, taking the error alone) and the connection's
 * `ServerResponse`. Returns false when the listener was not the one expected: then it stays, and so does the request
 * (the socket works as before; it only costs memory). Call it before adding the session's own `error` listener.
 */
export function releaseUpgrade (ws: WebSocket, connection: Socket, response: ServerResponse | undefined): boolean {
  const listeners = ws.listeners('error')
  const expected = listeners.length === 1 && listeners[0]!.length === 1
  if (expected) ws.removeListener('error', listeners[0] as (error: Error) => void)
  if (response?.socket === connection) response.detachSocket(connection)
  return expected
}
