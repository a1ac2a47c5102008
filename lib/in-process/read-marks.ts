/**
 * The in-process broker's read marks: one per user per PoV, in memory, so they outlive the history window but not
 * the process (as the history does not either).
 *
 * Bounded: at most `maxMarks` marks in all. Beyond it, the least recently moved mark of the least recently marked
 * PoV is forgotten; that user's `unread` on that PoV then counts the whole window again.
 */
import type { ReadMark } from '../../types/messages.js'
import type { ReadMarkStore, ReadSink } from '../broker.js'
import { InvalidCursorError } from '../errors.js'

/** What the store needs of the broker it belongs to. */
export interface ReadMarkFeed {
  /** The seq of a cursor the broker issued for `povId`, or undefined for any other string. */
  seqOf (povId: string, cursor: string): number | undefined
  /** How many of `povId`'s activities the history holds with a seq above `afterSeq`; `null` with history off. */
  countAfter (povId: string, afterSeq: number): number | null
}

/** A mark as kept: its user is the key it is stored under. */
interface StoredMark {
  readonly seq: number
  readonly cursor: string
  readonly readAt: string
}

export class InProcessReadMarks implements ReadMarkStore {
  readonly #feed: ReadMarkFeed
  readonly #maxMarks: number
  /**
   * Insertion order is recency: the first PoV is the least recently marked one, and within a PoV the first user's
   * mark is the least recently moved one.
   */
  readonly #byPov = new Map<string, Map<string, StoredMark>>()
  #count = 0
  #sink: ReadSink | undefined

  /**
   * @param feed the broker's cursors and history
   * @param maxMarks marks kept in all
   */
  constructor (feed: ReadMarkFeed, maxMarks: number) {
    this.#feed = feed
    this.#maxMarks = maxMarks
  }

  /** Marks kept now. */
  get size (): number {
    return this.#count
  }

  start (sink: ReadSink): void {
    this.#sink = sink
  }

  async markRead (povId: string, userId: string, cursor: string, readAt: string): Promise<ReadMark | null> {
    const seq = this.#feed.seqOf(povId, cursor)
    if (seq === undefined) throw new InvalidCursorError(`not a cursor of PoV ${povId} (never issued for it, or from before a restart)`)
    let marks = this.#byPov.get(povId)
    const current = marks?.get(userId)
    if (current && current.seq >= seq) return null
    if (marks) {
      this.#byPov.delete(povId) // re-inserted below: most recently marked last
    } else {
      marks = new Map()
    }
    this.#byPov.set(povId, marks)
    if (current) marks.delete(userId)
    else this.#count++
    marks.set(userId, { seq, cursor, readAt })
    if (this.#count > this.#maxMarks) this.#forgetLeastRecent()
    this.#sink?.read(povId, { userId, cursor, readAt })
    return { userId, cursor, readAt }
  }

  async reads (povId: string): Promise<ReadMark[]> {
    return [...this.#byPov.get(povId) ?? []].map(([userId, { cursor, readAt }]) => ({ userId, cursor, readAt }))
  }

  async markOf (povId: string, userId: string): Promise<ReadMark | null> {
    const stored = this.#byPov.get(povId)?.get(userId)
    return stored ? { userId, cursor: stored.cursor, readAt: stored.readAt } : null
  }

  async unreadAfter (povId: string, cursor: string | null): Promise<number | null> {
    // No mark, or one this start never issued: everything the window holds is after it.
    const seq = cursor === null ? 0 : this.#feed.seqOf(povId, cursor) ?? 0
    return this.#feed.countAfter(povId, seq)
  }

  /** Forgets every mark (the broker closed). */
  clear (): void {
    this.#byPov.clear()
    this.#count = 0
  }

  #forgetLeastRecent (): void {
    // No PoV's map is ever left empty, so the first PoV has a first mark.
    const [povId, marks] = this.#byPov.entries().next().value!
    marks.delete(marks.keys().next().value!)
    if (marks.size === 0) this.#byPov.delete(povId)
    this.#count--
  }
}
