/**
 * The types of the server API an app sees (`fastify.povRealtime`, what `fastify.broadcastActivity` resolves with),
 * apart from the hub that implements them: the hub's declarations name `ws`'s WebSocket, whose types (@types/ws) an
 * app does not get, so the published entry point must reach the API's types without reaching the hub's.
 */
import type { Member, ReadMark } from '../types/messages.js'
import type { ReadState } from './read-receipts/read-receipts-feature.js'
import type { PovRealtimeStats } from './stats.js'

/** What `broadcastActivity` resolves with. */
export interface BroadcastResult {
  /** The cursor subscribers receive with the activity. */
  cursor: string
  /** Sockets on this instance it was written to. */
  delivered: number
}

/** `fastify.povRealtime`. */
export interface PovRealtimeApi {
  /** This instance's counters, synchronously. */
  stats (): PovRealtimeStats
  /**
   * `readReceipts`: moves `userId`'s read mark on `povId` forward to `cursor` (for example when the user opened an
   * activity from an e-mail); the PoV's subscribers get a `read` event. Resolves `true` when the mark moved, `false`
   * when it was already there or further; rejects with `POV_REALTIME_INVALID_CURSOR` when `cursor` is not one of the
   * PoV's cursors.
   */
  markRead (userId: string, povId: string, cursor: string): Promise<boolean>
  /** `readReceipts`: every user's mark on `povId` (users without one are not listed). */
  reads (povId: string): Promise<ReadMark[]>
  /**
   * `readReceipts`: `userId`'s `{ readCursor, unread }` on each PoV of `povIds` (at most 1000), for a sidebar of unread
   * badges without a subscription per PoV. Not checked with `authorizeSubscription`: pass only PoVs the user may see.
   */
  unreadCounts (userId: string, povIds: readonly string[]): Promise<Record<string, ReadState>>
  /**
   * `presence` on: the members of `povId` now (on every instance, with the Redis broker). Rejects with
   * `POV_REALTIME_NOT_ENABLED` while the option is off, `POV_REALTIME_INVALID_ARGUMENT` for a malformed `povId`.
   */
  presence (povId: string): Promise<Member[]>
  /**
   * Ends `userId`'s access on every instance: their sockets stop watching `povId` (each is sent `unsubscribed` with
   * `reason: 'revoked'`, and nothing of the PoV after it; the user leaves its presence), or, without `povId`, every
   * socket of the user is closed with 4003. Resolves once every instance has applied it (see docs/server-api.md for
   * what "every" means with the Redis broker); rejects with `POV_REALTIME_BROKER_UNAVAILABLE` when that cannot be
   * confirmed, `POV_REALTIME_INVALID_ARGUMENT` for a malformed target. Revoke after the app's own authorization has
   * changed: a later `subscribe` is checked with `authorizeSubscription` as always.
   */
  revoke (target: { userId: string, povId?: string }): Promise<void>
}
