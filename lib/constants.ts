/** Internal limits that are not options: each is documented in the README under "Limits". */

/** Invalid messages in a row (no valid one between) before a socket is closed with 1008. */
export const INVALID_MESSAGE_STREAK_LIMIT = 20

/** How long `fastify.close()` waits for clients to answer the 1001 close before cutting their connections. */
export const SHUTDOWN_GRACE_MS = 1000

/** Live activities held for one resuming subscription while its replay is read; more means a too-slow resume. */
export const MAX_PENDING_DURING_REPLAY = 10_000
