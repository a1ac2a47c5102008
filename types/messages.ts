import type { Static } from '@sinclair/typebox'
import type * as schemas from './schemas.js'
import type { Activity } from './activity.js'

export type PingMessage = Static<typeof schemas.PingMessage>
export type SubscribeMessage = Static<typeof schemas.SubscribeMessage>
export type UnsubscribeMessage = Static<typeof schemas.UnsubscribeMessage>
export type AuthMessage = Static<typeof schemas.AuthMessage>
export type StatusMessage = Static<typeof schemas.StatusMessage>
export type TypingMessage = Static<typeof schemas.TypingMessage>
export type ReadMessage = Static<typeof schemas.ReadMessage>
export type ReadsRequest = Static<typeof schemas.ReadsRequest>
/** Every message a client may send. */
export type ClientMessage = Static<typeof schemas.ClientMessage>

export type PongMessage = Static<typeof schemas.PongMessage>
export type SubscribedMessage = Static<typeof schemas.SubscribedMessage>
export type UnsubscribedMessage = Static<typeof schemas.UnsubscribedMessage>
export type ResyncMessage = Static<typeof schemas.ResyncMessage>
export type AuthenticatedMessage = Static<typeof schemas.AuthenticatedMessage>
export type ErrorMessage = Static<typeof schemas.ErrorMessage>
/** `active` or `idle`. */
export type MemberStatus = Static<typeof schemas.MemberStatus>
/** A member of a PoV as presence messages carry it. */
export type Member = Static<typeof schemas.Member>
export type PresenceMessage = Static<typeof schemas.PresenceMessage>
export type PresenceDiffMessage = Static<typeof schemas.PresenceDiffMessage>
export type TypingEvent = Static<typeof schemas.TypingEvent>
/** A user's read mark on a PoV. */
export type ReadMark = Static<typeof schemas.ReadMark>
export type ReadEvent = Static<typeof schemas.ReadEvent>
export type ReadsMessage = Static<typeof schemas.ReadsMessage>
/** An activity delivered to a subscriber; `cursor` is opaque and ordered per PoV. */
export interface ActivityMessage { type: 'activity', cursor: string, data: Activity }
/** Every message the server may send. */
export type ServerMessage =
  | PongMessage | SubscribedMessage | UnsubscribedMessage | AuthenticatedMessage | ActivityMessage | ErrorMessage
  | PresenceMessage | PresenceDiffMessage | TypingEvent | ReadEvent | ReadsMessage | ResyncMessage
/** HTTP: what the token route answers. */
export type TokenResponse = Static<typeof schemas.TokenResponse>
/** HTTP: the body of a refusal (401, 403, 429) or a server fault (5xx). */
export type HttpErrorBody = Static<typeof schemas.HttpErrorBody>
