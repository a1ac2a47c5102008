/**
 * Read receipts, the plugin's side (the `readReceipts` option). The marks live in the broker's `ReadMarkStore`; this
 * checks what route handlers ask for, stamps `readAt` with the server's clock, and turns every moved mark the store
 * hands back (from any instance) into `read` events for this instance's subscribers of the PoV.
 *
 * Events are gathered for `READ_EVENT_COALESCE_MS` before they go out, keeping per PoV only each user's newest mark:
 * a user skimming a busy PoV moves their mark many times a second, and each move would otherwise be one frame to
 * every subscriber. What one window gathered for a PoV goes out as one frame per subscriber: a `read` event when one
 * user's mark moved, an unsolicited `reads` (the shape of the answer to a `reads` request) carrying every moved mark
 * when several did, so that on a PoV where everyone reads everything a window costs each subscriber one frame, not
 * one per reader.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { ReadEvent, ReadMark, ReadsMessage } from '../../types/messages.js'
import type { ReadMarkStore } from '../broker.js'
import { MAX_READS_PER_ANSWER, MAX_UNREAD_COUNTS_POVS, READ_EVENT_COALESCE_MS } from '../constants.js'
import { povIdArgument, userIdArgument } from '../api-arguments.js'
import { InvalidArgumentError, InvalidCursorError } from '../errors.js'
import { Cursor } from '../../types/schemas.js'

/** A user's read state on one PoV, as `subscribed` and `unreadCounts` give it. */
export interface ReadState {
  /** The user's mark, or `null` without one. */
  readCursor: string | null
  /** Activities after the mark that the history holds (the whole window without a mark); `null` with history off. */
  unread: number | null
}

/** Writes one serialized server message to every socket of this instance that watches `povId`. */
export type PovMessageSender = (povId: string, payload: Buffer) => void

const checkCursor = TypeCompiler.Compile(Cursor)

export class ReadReceiptsFeature {
  readonly #store: ReadMarkStore
  readonly #send: PovMessageSender
  /** Marks moved since the last flush: per PoV, per user the newest. */
  readonly #gathered = new Map<string, Map<string, ReadMark>>()
  #flushTimer: NodeJS.Timeout | undefined
  #closed = false
  /** The millisecond `#readAt` last formatted, and its text. */
  #readAtMs = NaN
  #readAtText = ''

  constructor (store: ReadMarkStore, send: PovMessageSender) {
    this.#store = store
    this.#send = send
  }

  /** Starts the store, which from then on hands back every moved mark. */
  async start (): Promise<void> {
    await this.#store.start({ read: (povId, mark) => this.#gather(povId, mark) })
  }

  /**
   * Moves `userId`'s mark on `povId` forward to `cursor`. Resolves `true` when it moved, `false` when the mark was
   * already there or further. Rejects with `POV_REALTIME_INVALID_CURSOR` when `cursor` is not one of `povId`'s.
   */
  async markRead (userId: string, povId: string, cursor: string): Promise<boolean> {
    userIdArgument(userId)
    povIdArgument(povId)
    if (!checkCursor.Check(cursor)) throw new InvalidCursorError('a cursor is 1 to 128 letters, digits, _ - . :')
    return await this.markChecked(userId, povId, cursor)
  }

  /**
   * `markRead` for arguments already checked: a socket's `read` message, whose `povId` and `cursor` the message's
   * schema checked and whose user the token names. On a busy PoV that is one call per reader per activity.
   */
  async markChecked (userId: string, povId: string, cursor: string): Promise<boolean> {
    return await this.#store.markRead(povId, userId, cursor, this.#readAt()) !== null
  }

  /** Every mark on `povId`. */
  async reads (povId: string): Promise<ReadMark[]> {
    return await this.#store.reads(povIdArgument(povId))
  }

  /** The marks a `reads` answer lists: every one, or the `MAX_READS_PER_ANSWER` most recent. */
  async recentReads (povId: string): Promise<ReadMark[]> {
    const marks = await this.#store.reads(povId)
    if (marks.length <= MAX_READS_PER_ANSWER) return marks
    // readAt is always `toISOString()` output, so the strings sort as the times do.
    return marks.sort((a, b) => a.readAt < b.readAt ? 1 : a.readAt > b.readAt ? -1 : 0).slice(0, MAX_READS_PER_ANSWER)
  }

  /** `userId`'s mark on `povId` and how many activities the history holds after it. */
  async stateOf (povId: string, userId: string): Promise<ReadState> {
    const mark = await this.#store.markOf(povId, userId)
    const readCursor = mark?.cursor ?? null
    return { readCursor, unread: await this.#store.unreadAfter(povId, readCursor) }
  }

  /**
   * `userId`'s read state on each of `povIds` (at most `MAX_UNREAD_COUNTS_POVS`), for a sidebar of unread badges
   * without a subscription per PoV. It does not check `authorizeSubscription`: the caller passes only PoVs the user
   * may see.
   */
  async unreadCounts (userId: string, povIds: readonly string[]): Promise<Record<string, ReadState>> {
    userIdArgument(userId)
    if (!Array.isArray(povIds) || povIds.length > MAX_UNREAD_COUNTS_POVS) {
      throw new InvalidArgumentError(`povIds must be an array of at most ${MAX_UNREAD_COUNTS_POVS} PoV ids`)
    }
    const unique = [...new Set(povIds.map(povIdArgument))]
    const states = await Promise.all(unique.map((povId) => this.stateOf(povId, userId)))
    // fromEntries defines own properties, so a PoV named `__proto__` is a key like any other.
    return Object.fromEntries(unique.map((povId, i) => [povId, states[i]!]))
  }

  /** Drops the events not sent yet and stops the timer (the plugin is closing). */
  close (): void {
    this.#closed = true
    clearTimeout(this.#flushTimer)
    this.#gathered.clear()
  }

  /** `new Date().toISOString()`, formatted once per millisecond: on a busy PoV hundreds of marks move in one. */
  #readAt (): string {
    const ms = Date.now()
    if (ms !== this.#readAtMs) {
      this.#readAtMs = ms
      this.#readAtText = new Date(ms).toISOString()
    }
    return this.#readAtText
  }

  #gather (povId: string, mark: ReadMark): void {
    if (this.#closed) return
    let marks = this.#gathered.get(povId)
    if (!marks) {
      marks = new Map()
      this.#gathered.set(povId, marks)
    }
    marks.set(mark.userId, mark)
    this.#flushTimer ??= setTimeout(() => this.#flush(), READ_EVENT_COALESCE_MS).unref()
  }

  #flush (): void {
    this.#flushTimer = undefined
    for (const [povId, marks] of this.#gathered) {
      // No frame carries more marks than an answer to `reads` may: a window in which thousands moved is several frames.
      const moved = [...marks.values()]
      for (let i = 0; i < moved.length; i += MAX_READS_PER_ANSWER) {
        this.#send(povId, Buffer.from(JSON.stringify(marksMoved(povId, moved.slice(i, i + MAX_READS_PER_ANSWER)))))
      }
    }
    this.#gathered.clear()
  }
}

/** The one message that tells a PoV's subscribers the marks that moved in a window: `read` for one, `reads` for several. */
function marksMoved (povId: string, marks: ReadMark[]): ReadEvent | ReadsMessage {
  if (marks.length === 1) {
    const { userId, cursor, readAt } = marks[0]!
    return { type: 'read', povId, userId, cursor, readAt }
  }
  return { type: 'reads', povId, reads: marks }
}
