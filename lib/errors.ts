/**
 * The errors this plugin throws or rejects with, made with @fastify/error under the `POV_REALTIME_` prefix.
 * Each is listed in docs/errors.md. HTTP ones carry the status the token route or the upgrade answers with.
 */
import createError from '@fastify/error'

/** Registration failed: an option is missing or malformed. */
export const InvalidOptionError = createError<'POV_REALTIME_INVALID_OPTION', [string]>(
  'POV_REALTIME_INVALID_OPTION', 'fastify-pov-realtime: %s', 500, TypeError)

/**
 * `broadcastActivity` was given something that is not a valid activity; it reached no one. A 500: the server's own
 * code built the activity, so a route that lets it through answers as for any bug, and Fastify logs it at `error`.
 */
export const InvalidActivityError = createError<'POV_REALTIME_INVALID_ACTIVITY', [string]>(
  'POV_REALTIME_INVALID_ACTIVITY', 'Invalid activity: %s', 500, TypeError)

/** `broadcastActivity` after `fastify.close()` began. */
export const ClosedError = createError<'POV_REALTIME_CLOSED', []>(
  'POV_REALTIME_CLOSED', 'fastify-pov-realtime is closing; the activity was not published', 503)

/** The token route or the upgrade: no credential, or one that does not verify. */
export const UnauthorizedError = createError<'POV_REALTIME_UNAUTHORIZED', [string]>(
  'POV_REALTIME_UNAUTHORIZED', '%s', 401)

/** The upgrade came from an `Origin` that `allowedOrigins` does not list. */
export const ForbiddenOriginError = createError<'POV_REALTIME_FORBIDDEN_ORIGIN', []>(
  'POV_REALTIME_FORBIDDEN_ORIGIN', 'Origin not allowed', 403)

/** The upgrade was malformed in a way that no token could fix (for example two tokens). */
export const BadHandshakeError = createError<'POV_REALTIME_BAD_HANDSHAKE', [string]>(
  'POV_REALTIME_BAD_HANDSHAKE', '%s', 400)

/**
 * `broadcastActivity` with the Redis broker while Redis cannot be reached (or did not answer in time). Its
 * `outcomeUnknown` property tells which: `false`, the activity was not published; `true`, it was sent to Redis but no
 * answer came, so it may have been published and delivered (see `BrokerUnavailable` in `redis/broker.ts`).
 * Retry later with the same activity `id`, or report the failure.
 */
export const BrokerUnavailableError = createError<'POV_REALTIME_BROKER_UNAVAILABLE', [string, { cause: unknown }?]>(
  'POV_REALTIME_BROKER_UNAVAILABLE', 'The broker is unavailable: %s', 503)

/**
 * `fastify.povRealtime.markRead` was given a cursor that is not one of the PoV's (never issued for it, malformed, or
 * newer than its latest activity).
 */
export const InvalidCursorError = createError<'POV_REALTIME_INVALID_CURSOR', [string]>(
  'POV_REALTIME_INVALID_CURSOR', 'Invalid cursor: %s', 400, TypeError)

/** A `fastify.povRealtime` function was given a malformed argument (a PoV id, a user id, a list). */
export const InvalidArgumentError = createError<'POV_REALTIME_INVALID_ARGUMENT', [string]>(
  'POV_REALTIME_INVALID_ARGUMENT', 'Invalid argument: %s', 400, TypeError)

/** A `fastify.povRealtime` function of an optional feature whose option is off (for example `markRead` without `readReceipts`). */
export const NotEnabledError = createError<'POV_REALTIME_NOT_ENABLED', [string, string]>(
  'POV_REALTIME_NOT_ENABLED', '%s needs the %s option, which is off', 500)

/** The upgrade of a user who already holds `maxSocketsPerUser` sockets on this instance; refused before it opens. */
export const TooManySocketsError = createError<'POV_REALTIME_TOO_MANY_SOCKETS', [number]>(
  'POV_REALTIME_TOO_MANY_SOCKETS', 'Too many sockets for this user: at most %d per server instance', 429)
