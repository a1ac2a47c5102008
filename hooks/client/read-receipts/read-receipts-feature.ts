/**
 * Read receipts on the watched PoVs: this user's marks (`markRead`), shown at once and sent, or kept waiting
 * (`pending-reads.ts`) until the PoV is subscribed again; everyone's marks, asked for (`reads`) on each subscription
 * for the components that show them and kept up to date by `read` events and unsolicited `reads` (the marks that
 * moved in one of the server's windows); the unread count of each PoV.
 *
 * An unsolicited `reads` has the shape of an answer: a `reads` on a PoV with a request of this connection still
 * unanswered is taken as the answer (the PoV's marks replaced), any other as moved marks (merged). Should a batch
 * come in just before the answer, it is taken for the answer and the answer merged after it: the marks end up the
 * same.
 *
 * `read` and `reads` go out only on a PoV whose `subscribed` carried `readCursor` on this connection: that is how the
 * server shows it has read receipts on, so that an app whose server has them off never draws a `NOT_ENABLED`.
 */
import type { ReadEvent, ReadMark, ReadMessage, ReadsMessage, ReadsRequest, SubscribedMessage } from '../../../types/messages.js'
import type { ReloadPersistence } from '../persistence/reload-persistence.js'
import type { PendingReads } from './pending-reads.js'
import type { PovRegistry } from '../pov-registry.js'
import type { PovState } from '../pov-state.js'
import { releaseOnce } from '../support/release-once.js'
import type { Timers } from '../connection/timers.js'

/** The server messages this part owns. */
export type ReadsServerMessage = ReadEvent | ReadsMessage

export interface ReadReceiptsFeatureOptions {
  povs: PovRegistry
  pendingReads: PendingReads
  offline: ReloadPersistence
  /** Puts a `read` or `reads` on the wire; false when it could not (not connected). */
  send: (message: ReadMessage | ReadsRequest) => boolean
  /** The session's user, if known: whose marks are this user's own. */
  userId: () => string | undefined
  timers: Timers
}

export class ReadReceiptsFeature {
  readonly #options: ReadReceiptsFeatureOptions
  /** Components that read everyone's marks, by PoV: `reads` is asked for on each subscription. */
  readonly #followers = new Map<string, number>()
  /** `reads` requests sent on this connection and not answered yet, by PoV. */
  readonly #asked = new Map<string, number>()
  /**
   * A `subscribed` of this session carried `readCursor`: read receipts are on (a later one without it means the
   * server's mark store is unreachable for now, and marks wait rather than being refused).
   */
  #on = false

  constructor (options: ReadReceiptsFeatureOptions) {
    this.#options = options
  }

  /** Marks `povId` read up to `cursor`; see `RealtimeClient.markRead`. */
  markRead (povId: string, cursor?: string): boolean {
    const { povs, pendingReads, offline, userId, timers } = this.#options
    const pov = povs.get(povId)
    const target = cursor ?? pov?.activities.latestCursor
    // Subscribed without `readCursor`, never with: the server has read receipts off, and the mark could never be sent.
    if (!pov || target === undefined || (pov.subscribed && !pov.readReceipts && !this.#on)) return false
    if (!pov.reads.advance(target)) return false
    // Shown in `reads` at once; the server's `read` echo brings its own `readAt`.
    const user = userId()
    if (user !== undefined) pov.reads.markMoved({ userId: user, cursor: target, readAt: new Date(timers.now()).toISOString() })
    if (!this.#sendRead(povId, pov, target)) pendingReads.queue(povId, target)
    offline.save(povId)
    offline.flush()
    return true
  }

  /** Keeps everyone's marks on `povId` up to date until the returned function is called; see `RealtimeClient.followReads`. */
  followReads (povId: string): () => void {
    this.#followers.set(povId, (this.#followers.get(povId) ?? 0) + 1)
    const pov = this.#options.povs.get(povId)
    if (pov?.subscribed && pov.readReceipts) this.#ask(povId)
    return releaseOnce(() => {
      const count = (this.#followers.get(povId) ?? 1) - 1
      if (count > 0) this.#followers.set(povId, count)
      else this.#followers.delete(povId)
    })
  }

  /**
   * `povId` is subscribed on this connection: with `readCursor`, read receipts are on, the server's mark and count are
   * shown (unless a mark waits: it goes out now), and the components that show everyone's marks get them afresh.
   */
  subscribed (message: SubscribedMessage, pov: PovState): void {
    if (!('readCursor' in message)) return
    const { povId } = message
    const { pendingReads, offline } = this.#options
    pov.readReceipts = true
    this.#on = true
    const pending = pendingReads.get(povId)
    pov.reads.subscribed(message.readCursor ?? null, message.unread ?? null, pending !== undefined)
    if (pending !== undefined && this.#sendRead(povId, pov, pending)) pendingReads.sent(povId)
    // A request of an earlier connection is never answered.
    this.#asked.delete(povId)
    if (this.#followers.has(povId)) this.#ask(povId)
    offline.save(povId)
    if (pending !== undefined) offline.flush()
  }

  /** A live activity arrived on `pov`: one more unread. */
  activityArrived (pov: PovState, cursor: string): void {
    // Replayed activities come before `subscribed`, whose `unread` counts them already.
    if (pov.subscribed) pov.reads.activityArrived(cursor)
  }

  /** Applies a server message about marks: one user's (`read`) or everyone's (`reads`). */
  received (message: ReadsServerMessage): void {
    switch (message.type) {
      case 'read': return this.#onRead(message)
      case 'reads': return this.#onReads(message)
    }
  }

  /** The session ended: whether the next server has read receipts on is unknown, and no mark waits. */
  forget (): void {
    this.#options.pendingReads.clear()
    this.#asked.clear()
    this.#on = false
  }

  #onRead (message: ReadEvent): void {
    const pov = this.#options.povs.subscribed(message.povId)
    if (!pov || !isReadMark(message)) return
    pov.reads.markMoved({ userId: message.userId, cursor: message.cursor, readAt: message.readAt })
    if (message.userId === this.#options.userId()) this.#ownMarkMoved(message.povId, pov, message.cursor)
  }

  #onReads (message: ReadsMessage): void {
    const pov = this.#options.povs.subscribed(message.povId)
    if (!pov || !Array.isArray(message.reads)) return
    const marks = message.reads.filter(isReadMark)
    const asked = this.#asked.get(message.povId) ?? 0
    if (asked > 0) {
      if (asked > 1) this.#asked.set(message.povId, asked - 1)
      else this.#asked.delete(message.povId)
      pov.reads.replaceMarks(marks)
    } else {
      pov.reads.marksMoved(marks)
    }
    const userId = this.#options.userId()
    const own = marks.find((mark) => mark.userId === userId)
    if (own) this.#ownMarkMoved(message.povId, pov, own.cursor)
  }

  /** The server has this user's mark at `cursor` (another tab read, or this one's `read` came back). */
  #ownMarkMoved (povId: string, pov: PovState, cursor: string): void {
    this.#options.pendingReads.confirmed(povId, cursor)
    pov.reads.advance(cursor)
    this.#options.offline.save(povId)
  }

  /** Asks for everyone's marks on `povId`; its answer is told from moved marks by this count. */
  #ask (povId: string): void {
    if (this.#options.send({ type: 'reads', povId })) this.#asked.set(povId, (this.#asked.get(povId) ?? 0) + 1)
  }

  /** Sends a `read` if the PoV is subscribed with read receipts on; true when it went out. */
  #sendRead (povId: string, pov: PovState, cursor: string): boolean {
    return pov.subscribed && pov.readReceipts && this.#options.send({ type: 'read', povId, cursor })
  }
}

function isReadMark (value: unknown): value is ReadMark {
  const mark = value as ReadMark | null
  return typeof mark?.userId === 'string' && typeof mark.cursor === 'string' && typeof mark.readAt === 'string'
}
