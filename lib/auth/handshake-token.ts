/**
 * Takes the WebSocket token out of the upgrade request, from `?token=` or from a `bearer.<token>` entry of
 * `Sec-WebSocket-Protocol`, and removes it from both places. This runs on the raw request before Fastify routes
 * (and logs) it, so the token never reaches a log line, and ws never selects (and echoes) the bearer entry.
 */
import type { IncomingMessage, Server } from 'node:http'
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../types/wire-constants.js'

export type HandshakeToken =
  | { readonly token: string | undefined }
  | { readonly problem: string }

const kHandshakeToken = Symbol('pov-realtime.handshake-token')
type RawRequest = IncomingMessage & { [kHandshakeToken]?: HandshakeToken }

function fromQuery (raw: IncomingMessage): string[] {
  const url = raw.url ?? '/'
  const queryAt = url.indexOf('?')
  if (queryAt === -1) return []
  const params = new URLSearchParams(url.slice(queryAt + 1))
  const tokens = params.getAll('token')
  if (tokens.length === 0) return tokens
  params.delete('token')
  const rest = params.toString()
  raw.url = url.slice(0, queryAt) + (rest ? `?${rest}` : '')
  return tokens
}

function fromSubprotocol (raw: IncomingMessage): { tokens: string[], offersOurs: boolean } {
  const header = raw.headers['sec-websocket-protocol']
  if (typeof header !== 'string') return { tokens: [], offersOurs: false }
  const offered = header.split(',').map((entry) => entry.trim()).filter(Boolean)
  const tokens = offered.filter((entry) => entry.startsWith(BEARER_PROTOCOL_PREFIX))
    .map((entry) => entry.slice(BEARER_PROTOCOL_PREFIX.length))
  const offersOurs = offered.includes(SUBPROTOCOL)
  // What ws sees is what it may select: only our subprotocol when offered (it picks the first one it is given),
  // never a bearer entry (it would echo the token).
  let kept: string | undefined = header
  if (offersOurs) {
    kept = SUBPROTOCOL
  } else if (tokens.length > 0) {
    const rest = offered.filter((entry) => !entry.startsWith(BEARER_PROTOCOL_PREFIX))
    kept = rest.length > 0 ? rest.join(', ') : undefined
  }
  if (kept !== header) {
    if (kept === undefined) delete raw.headers['sec-websocket-protocol']
    else raw.headers['sec-websocket-protocol'] = kept
    // The raw header list too, so that nothing that logs or keeps it (it lives as long as the socket) has the token.
    for (let i = 0; i < raw.rawHeaders.length; i += 2) {
      if (raw.rawHeaders[i]!.toLowerCase() === 'sec-websocket-protocol') raw.rawHeaders[i + 1] = kept ?? ''
    }
  }
  return { tokens, offersOurs }
}

function extract (raw: IncomingMessage): HandshakeToken {
  const inQuery = fromQuery(raw)
  const { tokens: inProtocol, offersOurs } = fromSubprotocol(raw)
  if (inQuery.length + inProtocol.length > 1) {
    return { problem: 'more than one token offered; send exactly one, in the subprotocol or in ?token=' }
  }
  if (inProtocol.length === 1 && !offersOurs) {
    return { problem: `offer the '${SUBPROTOCOL}' subprotocol along with the bearer entry` }
  }
  return { token: inQuery[0] ?? inProtocol[0] }
}

/** The token of this upgrade request (removed from its URL and headers on the first call). */
export function takeHandshakeToken (raw: IncomingMessage): HandshakeToken {
  const request = raw as RawRequest
  request[kHandshakeToken] ??= extract(raw)
  return request[kHandshakeToken]
}

/** Drops the token kept on the request once it has been verified: the request lives as long as the socket. */
export function forgetHandshakeToken (raw: IncomingMessage): void {
  const request = raw as RawRequest
  if (request[kHandshakeToken] && 'token' in request[kHandshakeToken]) request[kHandshakeToken] = { token: undefined }
}

/** The path as the router will match it: percent-decoded, without a trailing slash, duplicate slashes folded. */
function pathOf (url: string | undefined): string {
  if (!url) return ''
  const queryAt = url.indexOf('?')
  let path = queryAt === -1 ? url : url.slice(0, queryAt)
  try {
    path = decodeURIComponent(path)
  } catch {
    // Malformed escapes: the router answers 400; compare as sent.
  }
  path = path.replace(/\/{2,}/g, '/')
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/**
 * Strips the token from requests for `wsPath` as soon as the HTTP server receives them, ahead of Fastify's own
 * listeners (which log the URL). Returns the function that removes the listeners.
 */
export function stripTokensAhead (server: Server, wsPath: string): () => void {
  const target = wsPath.toLowerCase()
  const strip = (raw: IncomingMessage): void => {
    // Case-insensitive, so that a router set to ignore case cannot route a token past us into a log line.
    if (pathOf(raw.url).toLowerCase() === target) takeHandshakeToken(raw)
  }
  server.prependListener('upgrade', strip)
  server.prependListener('request', strip)
  return () => {
    server.removeListener('upgrade', strip)
    server.removeListener('request', strip)
  }
}
