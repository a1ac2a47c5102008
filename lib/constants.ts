/** Internal limits that are not options: each is documented in the README under "Limits". */

/** Invalid messages in a row (no valid one between) before a socket is closed with 1008. */
export const INVALID_MESSAGE_STREAK_LIMIT = 20

/** How long `fastify.close()` waits for clients to answer the 1001 close before cutting their connections. */
export const SHUTDOWN_GRACE_MS = 1000

/** Live activities held for one resuming subscription while its replay is read; more means a too-slow resume. */
export const MAX_PENDING_DURING_REPLAY = 10_000

/**
 * Presence changes of one PoV are coalesced over this window: one `presence_diff` per subscriber per window at most,
 * so a reconnect storm of hundreds of members costs each subscriber one diff, not one per member.
 */
export const PRESENCE_DIFF_WINDOW_MS = 50

/** How soon a subscriber whose presence message was dropped (it read too slowly) is retried with a full snapshot. */
export const PRESENCE_HEAL_DELAY_MS = 1000

/** Largest member `info` (the `presence.info(user)` result), serialized; a larger one is logged and replaced by `{}`. */
export const MAX_MEMBER_INFO_BYTES = 1024

/**
 * Presence and typing messages are dropped (the first thing dropped) for a socket with more than this share of
 * `maxBufferedBytes` queued: activities keep the rest of the room.
 */
export const EPHEMERAL_BUFFER_SHARE = 0.5
