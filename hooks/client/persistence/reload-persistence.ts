/**
 * What of the client goes into offline storage (`persisted-state.ts`), when, and what comes back: each watched PoV's
 * cursor, this user's mark, the mark waiting to be sent and the newest activities are saved whenever one of them changes
 * (written a little later, in one go; at once for a mark); a PoV watched again after a reload shows what was kept at
 * once and resumes after its cursor. Nothing is saved before the session's user is known, nor under another user's name.
 */
import { resolveDocument, type ResolvedClientOptions } from '../client-options.js'
import type { PendingReads } from '../read-receipts/pending-reads.js'
import { PersistedState } from './persisted-state.js'
import type { PovRegistry } from '../pov-registry.js'
import type { WatchRegistry } from '../watch-registry.js'

/** The parts of the client whose state is kept. */
export interface ReloadPersistenceParts {
  povs: PovRegistry
  watches: WatchRegistry
  pendingReads: PendingReads
  /** The session's user, once known. */
  userId: () => string | undefined
}

export class ReloadPersistence {
  readonly #parts: ReloadPersistenceParts
  /** `undefined` with `persist: false`. */
  readonly #persisted: PersistedState | undefined
  readonly #persistActivities: number

  constructor (options: ResolvedClientOptions, parts: ReloadPersistenceParts) {
    this.#parts = parts
    this.#persistActivities = options.persistActivities
    this.#persisted = options.persist === false
      ? undefined
      : new PersistedState({
        persist: options.persist,
        scope: options.socketUrl,
        maxBytes: options.persistMaxBytes,
        maxActivities: Math.min(options.persistActivities, options.activityLimit),
        timers: options.timers,
        document: () => resolveDocument(options.document)
      })
  }

  /** Opens `userId`'s kept state and restores the watched PoVs from it. */
  open (userId: string): void {
    if (!this.#persisted) return
    this.#persisted.open(userId)
    const { povs, watches } = this.#parts
    for (const povId of povs.ids()) if (watches.isWatched(povId)) this.restore(povId)
  }

  /**
   * Shows what was kept of `povId` (a reload's feed, at once) and resumes after its cursor: only once the session's
   * user is known and is the one whose state is open, so that after a sign-out without a clear the next user never
   * sees the previous one's feed while their token is on its way.
   */
  restore (povId: string): void {
    const { povs, watches, pendingReads, userId } = this.#parts
    const user = userId()
    if (user === undefined || this.#persisted?.userId !== user) return
    const pov = povs.get(povId)
    const saved = this.#persisted.get(povId)
    // What the client holds in memory is newer than anything kept.
    if (!pov || !saved || pov.activities.latestCursor !== undefined || watches.cursorOf(povId) !== undefined) return
    for (const { activity, cursor } of saved.activities) pov.activities.add(activity, cursor)
    if (saved.cursor !== undefined) watches.advance(povId, saved.cursor)
    pov.reads.restore(saved.readCursor)
    if (saved.pendingRead !== undefined) pendingReads.restore(povId, saved.pendingRead)
  }

  /** Records `povId`'s state for the next reload (written a little later, in one go). */
  save (povId: string): void {
    const { povs, watches, pendingReads, userId } = this.#parts
    const pov = povs.get(povId)
    if (!this.#persisted || !pov || userId() === undefined) return
    this.#persisted.set(povId, {
      cursor: watches.cursorOf(povId),
      readCursor: pov.reads.readCursor,
      pendingRead: pendingReads.get(povId),
      activities: pov.activities.held(this.#persistActivities)
    })
  }

  /** Writes what is recorded now (a mark must not be lost to a closing tab). */
  flush (): void {
    this.#persisted?.flush()
  }

  /** Writes what is recorded and stops listening to the page (the client closes). */
  close (): void {
    this.#persisted?.close()
  }
}
