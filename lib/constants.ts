/** Internal limits that are not options: each is documented in docs/limits.md. */

/** Invalid messages in a row (no valid one between) before a socket is closed with 1008. */
export const INVALID_MESSAGE_STREAK_LIMIT = 20

/** How long `fastify.close()` waits for clients to answer the 1001 close before cutting their connections. */
export const SHUTDOWN_GRACE_MS = 1000

/**
 * Messages (live activities, `read` events) held for one subscription while its subscribe is answered (a replay read,
 * the read state fetched); more means a too-slow answer, and the socket is closed as a slow consumer.
 */
export const MAX_PENDING_DURING_REPLAY = 10_000

/**
 * Read marks one user may hold in the in-process broker (one per PoV read); beyond it that user's least recently moved
 * mark is forgotten, so one user's marks never push out another's. A mark costs about 250 bytes of heap (measured with
 * 11-character ids: docs/limits.md), so one user holds at most about 250 KB.
 */
export const MAX_READ_MARKS_PER_USER = 1000

/**
 * Read marks one PoV may hold in the in-process broker (one per user who read it); beyond it the PoV's least recently
 * moved mark is forgotten. Only a PoV read by that many users reaches it: about 25 MB for that PoV.
 */
export const MAX_READ_MARKS_PER_POV = 100_000

/**
 * PoVs whose counter (cursor positions) and history bookkeeping the in-process broker keeps; beyond it the least
 * recently published is forgotten (its next activity starts a new run of positions; a resume from before answers
 * `recovered: false`).
 */
export const MAX_IN_PROCESS_POVS = 50_000

/** `history.maxTotalBytes` dropping entries is logged at most once per this many milliseconds (it is counted each time). */
export const HISTORY_TOTAL_WARN_INTERVAL_MS = 60_000

/**
 * How long moved read marks are gathered before their `read` events go out (per PoV, per user only the newest mark),
 * so that a busy PoV where everyone reads each activity does not flood its subscribers.
 */
export const READ_EVENT_COALESCE_MS = 50

/** Marks one `reads` answer lists at most: the most recent ones. */
export const MAX_READS_PER_ANSWER = 1000

/** PoVs one `fastify.povRealtime.unreadCounts` call may ask about. */
export const MAX_UNREAD_COUNTS_POVS = 1000

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

/**
 * A catch-up (a resume's replay, and what arrived for the PoV while it was sent) is written while the socket has at
 * most this share of `maxBufferedBytes` queued, then paced by what the client reads: a full history window may be
 * several times the bound, and live frames keep the rest of the room.
 */
export const CATCH_UP_BUFFER_SHARE = 0.5

/** Random bytes in each heartbeat ping: only a pong that echoes them keeps the peer alive (it read up to the ping). */
export const PING_PAYLOAD_BYTES = 8

/**
 * `status` changes one socket may make per window; more are held back and the newest is applied when the window ends.
 * A change fans out to every member of every PoV the socket watches, so it has a limit of its own on top of
 * `rateLimit`. A person switching tabs rarely changes status more than once every two seconds.
 */
export const STATUS_CHANGE_LIMIT = { max: 5, timeWindow: 10_000 } as const

/**
 * The heartbeat pings at most this many sockets in one turn of the event loop, the rest later in the interval (a ping
 * is a write system call: 10–20 µs each, up to 160 µs on a loaded shared machine; 100 stay under 20 ms there).
 */
export const HEARTBEAT_SLICE_SOCKETS = 100

/** The heartbeat's slices are at least this far apart. */
export const HEARTBEAT_MIN_SLICE_MS = 10

/**
 * How often the Redis broker's sharded subscriber (on a Cluster) reads the slot map again. ioredis reads it only
 * when a subscriber connection is lost or Redis unsubscribes it (a failover, a slot moved), and it asks one node
 * picked at random: one that has not yet heard of a failover shows the old map, and the subscriber then stayed
 * deaf to the PoVs of the new master for good (seen once in about eight planned failovers). Read again on this
 * timer, the new map is found within it, and the channel sets fill what was missed from the history.
 */
export const CLUSTER_SUBSCRIBER_SLOTS_REFRESH_MS = 2000
