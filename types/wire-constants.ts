/**
 * Names and numbers of the wire protocol that the server and the client share.
 * Plain constants with no imports, so that the browser bundle of `hooks/` may use them.
 */

/** The subprotocol a client offers (and the server selects) on the upgrade. */
export const SUBPROTOCOL = 'pov-realtime.v1'

/** Prefix of the `Sec-WebSocket-Protocol` entry that carries the token: `bearer.<token>`. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.'

/** The `aud` claim that marks a JWT as a WebSocket token (and not an access token). */
export const TOKEN_AUDIENCE = 'pov-realtime'

/** Close codes the server sends. */
export const CloseCode = {
  /** The server is shutting down; reconnect (possibly elsewhere). */
  GOING_AWAY: 1001,
  /** A frame that breaks WebSocket framing (sent by the WebSocket layer). */
  PROTOCOL_ERROR: 1002,
  /** A text frame that is not UTF-8 (sent by the WebSocket layer). */
  INVALID_PAYLOAD: 1007,
  /** Repeated protocol abuse. */
  POLICY_VIOLATION: 1008,
  /** A frame larger than `maxPayload`. */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server fault. */
  INTERNAL_ERROR: 1011,
  /** The token expired on a live connection without an in-band refresh. */
  TOKEN_EXPIRED: 4002,
  /** A refused identity change, or access revoked. */
  FORBIDDEN: 4003,
  /** Rate limit exceeded repeatedly, or the client reads too slowly. */
  TOO_MANY: 4008
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

/** The stable `code` of an `error` message. */
export const ErrorCode = {
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  FORBIDDEN: 'FORBIDDEN',
  SUBSCRIPTION_LIMIT: 'SUBSCRIPTION_LIMIT',
  RATE_LIMITED: 'RATE_LIMITED',
  INVALID_TOKEN: 'INVALID_TOKEN',
  NOT_ENABLED: 'NOT_ENABLED'
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** The severities an activity may carry. */
export const SEVERITIES = ['error', 'warning', 'info', 'success'] as const
export type Severity = typeof SEVERITIES[number]
