/**
 * The wire protocol as TypeBox schemas: the single source of truth for both the validators
 * (compiled once, in `lib/socket/message-parser.ts` and `lib/activity-serializer.ts`) and the TypeScript types
 * (derived in `types/`, which the client imports type-only).
 */
import { Type } from '@sinclair/typebox'
import { ErrorCode, SEVERITIES } from './wire-constants.js'

const limits = {
  povId: 128,
  cursor: 128,
  token: 8192,
  id: 256,
  userId: 256,
  name: 64,
  title: 500,
  message: 10_000,
  actionUrl: 2048
}

export const PovId = Type.String({ pattern: '^[A-Za-z0-9_.:\\-]{1,128}$', maxLength: limits.povId })
export const Cursor = Type.String({ pattern: '^[A-Za-z0-9_.:\\-]{1,128}$', maxLength: limits.cursor })

/** A relative path (not protocol-relative) or an absolute http(s) URL: never `javascript:` and the like. */
const ActionUrl = Type.String({ pattern: '^(/(?!/)|https?://)', maxLength: limits.actionUrl })
/** ISO 8601 date-time, as `Date.prototype.toISOString` writes it (offsets allowed). */
const IsoDateTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$'
})

const activityFields = {
  id: Type.String({ minLength: 1, maxLength: limits.id }),
  type: Type.String({ minLength: 1, maxLength: limits.name }),
  action: Type.String({ minLength: 1, maxLength: limits.name }),
  povId: PovId,
  userId: Type.String({ minLength: 1, maxLength: limits.userId }),
  title: Type.String({ minLength: 1, maxLength: limits.title }),
  message: Type.String({ maxLength: limits.message }),
  severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
  actionUrl: Type.Optional(ActionUrl),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
}

/** What `broadcastActivity` accepts: unknown top-level fields are refused, so a database row passed by mistake leaks nothing. */
export const ActivityInput = Type.Object({
  ...activityFields,
  createdAt: Type.Optional(IsoDateTime)
}, { additionalProperties: false })

/** An activity as subscribers receive it. */
export const Activity = Type.Object({
  ...activityFields,
  createdAt: IsoDateTime
}, { additionalProperties: false })

// ---- client → server ----------------------------------------------------------------------

export const PingMessage = Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false })

export const SubscribeMessage = Type.Object({
  type: Type.Literal('subscribe'),
  povId: PovId,
  since: Type.Optional(Cursor)
}, { additionalProperties: false })

export const UnsubscribeMessage = Type.Object({
  type: Type.Literal('unsubscribe'),
  povId: PovId
}, { additionalProperties: false })

export const AuthMessage = Type.Object({
  type: Type.Literal('auth'),
  token: Type.String({ minLength: 1, maxLength: limits.token })
}, { additionalProperties: false })

/** A socket's activity status; a member is `active` when any of their sockets is. */
export const MemberStatus = Type.Union([Type.Literal('active'), Type.Literal('idle')])

/** `presence` option: this socket's activity status (applies to every PoV it watches; not answered). */
export const StatusMessage = Type.Object({
  type: Type.Literal('status'),
  status: MemberStatus
}, { additionalProperties: false })

/** `presence` option: the user is (or stopped) typing on a PoV this socket watches. */
export const TypingMessage = Type.Object({
  type: Type.Literal('typing'),
  povId: PovId,
  typing: Type.Boolean()
}, { additionalProperties: false })

/** `readReceipts` option: the user has read `povId` up to the activity with `cursor`. */
export const ReadMessage = Type.Object({
  type: Type.Literal('read'),
  povId: PovId,
  cursor: Cursor
}, { additionalProperties: false })

/** `readReceipts` option: asks for everyone's read marks on a PoV this socket watches. */
export const ReadsRequest = Type.Object({
  type: Type.Literal('reads'),
  povId: PovId
}, { additionalProperties: false })

export const ClientMessage = Type.Union([
  PingMessage, SubscribeMessage, UnsubscribeMessage, AuthMessage, StatusMessage, TypingMessage, ReadMessage, ReadsRequest
])

/** The optional features, as named by their plugin options. */
export type Feature = 'presence' | 'readReceipts'

/**
 * Message types of optional features. While a feature is off, the server answers them with `NOT_ENABLED` rather
 * than `INVALID_MESSAGE`.
 */
export const FEATURE_MESSAGE_TYPES: Readonly<Record<string, Feature>> = {
  status: 'presence',
  typing: 'presence',
  read: 'readReceipts',
  reads: 'readReceipts'
}

// ---- server → client ----------------------------------------------------------------------

export const PongMessage = Type.Object({ type: Type.Literal('pong') })

export const SubscribedMessage = Type.Object({
  type: Type.Literal('subscribed'),
  povId: PovId,
  recovered: Type.Optional(Type.Boolean()),
  /** `readReceipts` on: the user's read mark on the PoV, or `null` without one. */
  readCursor: Type.Optional(Type.Union([Cursor, Type.Null()])),
  /** `readReceipts` on: activities after the mark that the history holds (the whole window without a mark); `null` with history off. */
  unread: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]))
})

/**
 * The answer to `unsubscribe`; also sent unasked, with `reason: 'revoked'`, when the server ended the subscription
 * (`fastify.povRealtime.revoke`, or `authorizeSubscription` refusing it on a re-check): nothing of the PoV follows.
 */
export const UnsubscribedMessage = Type.Object({
  type: Type.Literal('unsubscribed'),
  povId: PovId,
  reason: Type.Optional(Type.Literal('revoked'))
})

/**
 * Sent unasked: the PoV's live feed had a gap that the history could not fill (the broker lost activities: Redis
 * restarted empty, a failover lost writes, an outage outlasted the window). The subscription stays and live
 * activities after `cursor` follow; `cursor` is `null` when no activity of the PoV is left to name. Treat it as
 * `recovered: false`: reload the PoV's state from the app.
 */
export const ResyncMessage = Type.Object({
  type: Type.Literal('resync'),
  povId: PovId,
  cursor: Type.Union([Cursor, Type.Null()])
})

export const AuthenticatedMessage = Type.Object({ type: Type.Literal('authenticated'), expiresAt: Type.Number() })

export const ActivityMessage = Type.Object({ type: Type.Literal('activity'), cursor: Cursor, data: Activity })

export const ErrorMessage = Type.Object({
  type: Type.Literal('error'),
  code: Type.Union(Object.values(ErrorCode).map((code) => Type.Literal(code))),
  message: Type.String(),
  povId: Type.Optional(Type.String())
})

/** One member of a PoV: a user (not a socket), with the public face `info` that the `presence` option gives them. */
export const Member = Type.Object({
  userId: Type.String({ minLength: 1, maxLength: limits.userId }),
  status: MemberStatus,
  info: Type.Record(Type.String(), Type.Unknown())
})

/** Sent right after `subscribed`: everyone watching the PoV now, the subscriber included. */
export const PresenceMessage = Type.Object({
  type: Type.Literal('presence'),
  povId: PovId,
  members: Type.Array(Member)
})

/** Changes since the snapshot or the previous diff; a member whose status changed comes again in `joins`. */
export const PresenceDiffMessage = Type.Object({
  type: Type.Literal('presence_diff'),
  povId: PovId,
  joins: Type.Array(Member),
  leaves: Type.Array(Type.String())
})

/** Another member started or stopped typing on the PoV. */
export const TypingEvent = Type.Object({
  type: Type.Literal('typing'),
  povId: PovId,
  userId: Type.String(),
  typing: Type.Boolean()
})

/** A user's read mark on a PoV: the newest activity they have read, and when the server recorded it. */
export const ReadMark = Type.Object({
  userId: Type.String(),
  cursor: Cursor,
  readAt: IsoDateTime
})

/** A read mark moved (sent to every subscriber of the PoV, the reader's own sockets included). */
export const ReadEvent = Type.Object({
  type: Type.Literal('read'),
  povId: PovId,
  userId: Type.String(),
  cursor: Cursor,
  readAt: IsoDateTime
})

/** The answer to a `reads` request: every user's mark on the PoV (users without one are not listed). */
export const ReadsMessage = Type.Object({
  type: Type.Literal('reads'),
  povId: PovId,
  reads: Type.Array(ReadMark)
})

export const ServerMessage = Type.Union([
  PongMessage, SubscribedMessage, UnsubscribedMessage, AuthenticatedMessage, ActivityMessage, ErrorMessage,
  PresenceMessage, PresenceDiffMessage, TypingEvent, ReadEvent, ReadsMessage, ResyncMessage
])

/**
 * HTTP: the token route's answer (`GET /api/auth/ws-token`), declared as the route's response schema so that
 * @fastify/swagger and the like document it, and serialized by it.
 */
export const TokenResponse = Type.Object({
  token: Type.String({ minLength: 1, maxLength: limits.token, description: 'The WebSocket token, a short-lived JWT' }),
  expiresAt: Type.Integer({ description: 'When the token expires, in ms since the epoch' })
}, { additionalProperties: false })

/** HTTP: the body of the token route's and the upgrade's refusals (401, 403, 429) and of a server fault (5xx). */
export const HttpErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'POV_REALTIME_UNAUTHORIZED, …; POV_REALTIME_INTERNAL for a 5xx' }),
  error: Type.String(),
  message: Type.String({ description: 'What was wrong, naming the cookie looked for (never its value)' })
})
