import type { Static } from '@sinclair/typebox'
import type * as schemas from '../lib/protocol-schemas.js'
import type { Activity } from './activity.js'

export type PingMessage = Static<typeof schemas.PingMessage>
export type SubscribeMessage = Static<typeof schemas.SubscribeMessage>
export type UnsubscribeMessage = Static<typeof schemas.UnsubscribeMessage>
export type AuthMessage = Static<typeof schemas.AuthMessage>
/** Every message a client may send. */
export type ClientMessage = Static<typeof schemas.ClientMessage>

export type PongMessage = Static<typeof schemas.PongMessage>
export type SubscribedMessage = Static<typeof schemas.SubscribedMessage>
export type UnsubscribedMessage = Static<typeof schemas.UnsubscribedMessage>
export type AuthenticatedMessage = Static<typeof schemas.AuthenticatedMessage>
export type ErrorMessage = Static<typeof schemas.ErrorMessage>
/** An activity delivered to a subscriber; `cursor` is opaque and ordered per PoV. */
export interface ActivityMessage { type: 'activity', cursor: string, data: Activity }
/** Every message the server may send. */
export type ServerMessage =
  | PongMessage | SubscribedMessage | UnsubscribedMessage | AuthenticatedMessage | ActivityMessage | ErrorMessage
