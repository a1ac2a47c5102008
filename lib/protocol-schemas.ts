/**
 * The wire protocol as TypeBox schemas: the single source of truth for both the validators
 * (compiled once, in `message-parser.ts` and `activity-validator.ts`) and the TypeScript types
 * (derived in `types/`, which the client imports type-only).
 */
import { Type } from '@sinclair/typebox'
import { ErrorCode, SEVERITIES } from '../types/wire-constants.js'

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

export const ClientMessage = Type.Union([PingMessage, SubscribeMessage, UnsubscribeMessage, AuthMessage])

/**
 * Message types of optional features (presence, typing, read receipts). While a feature is off,
 * the server answers them with `NOT_ENABLED` rather than `INVALID_MESSAGE`.
 */
export const FEATURE_MESSAGE_TYPES: Readonly<Record<string, 'presence' | 'readReceipts'>> = {
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
  recovered: Type.Optional(Type.Boolean())
})

export const UnsubscribedMessage = Type.Object({ type: Type.Literal('unsubscribed'), povId: PovId })

export const AuthenticatedMessage = Type.Object({ type: Type.Literal('authenticated'), expiresAt: Type.Number() })

export const ActivityMessage = Type.Object({ type: Type.Literal('activity'), cursor: Cursor, data: Activity })

export const ErrorMessage = Type.Object({
  type: Type.Literal('error'),
  code: Type.Union(Object.values(ErrorCode).map((code) => Type.Literal(code))),
  message: Type.String(),
  povId: Type.Optional(Type.String())
})

export const ServerMessage = Type.Union([
  PongMessage, SubscribedMessage, UnsubscribedMessage, AuthenticatedMessage, ActivityMessage, ErrorMessage
])
