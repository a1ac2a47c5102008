/**
 * The socket side of presence, as a PoV's presence and its typing indicators both see it. In a module of its own so
 * that `pov-presence.ts` (which owns the typing indicators) and `typing-indicators.ts` need not import each other.
 */
import type { MemberStatus } from '../../types/messages.js'

export interface PresenceReceiver {
  readonly userId: string
  /** The socket's activity status (`active` at connect). */
  readonly status: MemberStatus
  /**
   * Writes one serialized presence or typing message (shared by its recipients) unless the socket is backed up;
   * returns whether it was written.
   */
  sendEphemeral (payload: Buffer): boolean
}
