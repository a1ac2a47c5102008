/**
 * One PoV's read receipts as the components see them: everyone's marks, this user's own mark, and how many activities
 * came after it.
 *
 * Cursors are opaque: two of them can only be ordered by where their activities stand among those the client holds
 * (see `ActivityList.positionOf`). When one of them is not held, the order is unknown, and the server, whose marks only
 * move forward, decides.
 */
import type { ReadMark } from '../../../types/messages.js'
import { byCodeUnits } from '../support/code-unit-order.js'
import { PublishedValue } from '../support/published-value.js'

export interface ReadReceiptsSnapshot {
  /** Everyone's marks on the PoV that the client has heard of, sorted by `userId`. */
  readonly reads: readonly ReadMark[]
  /** This user's mark: the server's, or a newer one `markRead` made; `null` without one (or read receipts off). */
  readonly readCursor: string | null
  /**
   * Activities after the mark: the server's count when subscribing, one more for each live activity, counted again
   * among the held activities when the mark moves; `null` while unknown (read receipts or history off).
   */
  readonly unread: number | null
}

/** Where cursors stand among the activities the client holds. */
export interface CursorPositions {
  positionOf (cursor: string): number
  countAfter (cursor: string): number | undefined
}

/** The read receipts of a PoV the client knows nothing about. */
export const NOTHING_READ: ReadReceiptsSnapshot = Object.freeze({ reads: Object.freeze([]), readCursor: null, unread: null })

export class PovReadReceipts {
  readonly #positions: CursorPositions
  readonly #marks = new Map<string, ReadMark>()
  /**
   * `#marks` sorted by `userId`, as the snapshot shows them; dropped when a mark moves. A busy PoV changes its unread
   * count with every activity: the marks are sorted again only when they changed, not on each of those.
   */
  #sorted: readonly ReadMark[] | undefined = NOTHING_READ.reads
  #readCursor: string | null = null
  #unread: number | null = null
  readonly value: PublishedValue<ReadReceiptsSnapshot>

  constructor (positions: CursorPositions, schedule: (flush: () => void) => void) {
    this.#positions = positions
    this.value = new PublishedValue(NOTHING_READ, schedule)
  }

  get readCursor (): string | null {
    return this.#readCursor
  }

  /**
   * 1 when `a` is known to be newer than `b`, 0 when they are the same, -1 when known older, `undefined` when the
   * client cannot tell (one of them is not held). No mark (`null`) is older than any cursor.
   */
  compare (a: string, b: string | null): 1 | 0 | -1 | undefined {
    if (b === null) return 1
    if (a === b) return 0
    const pa = this.#positions.positionOf(a)
    const pb = this.#positions.positionOf(b)
    if (pa === -1 || pb === -1) return undefined
    return pa > pb ? 1 : -1
  }

  /** Whether a mark at `cursor` may move this user's mark forward (false when known not to). */
  mayAdvance (cursor: string): boolean {
    const order = this.compare(cursor, this.#readCursor)
    return order === 1 || order === undefined
  }

  /** What the client remembered from before (offline storage): shown until the server says otherwise. */
  restore (readCursor: string | null): void {
    this.#readCursor = readCursor
    this.#unread = readCursor === null ? null : this.#positions.countAfter(readCursor) ?? null
    this.#changed()
  }

  /**
   * The server's word at subscription. A local mark it has not heard yet (`keepLocal`: queued while offline, sent
   * next) stays, with the count taken again from the held activities.
   */
  subscribed (readCursor: string | null, unread: number | null, keepLocal: boolean): void {
    if (keepLocal && this.#readCursor !== null) {
      this.#unread = this.#positions.countAfter(this.#readCursor) ?? unread
    } else {
      this.#readCursor = readCursor
      this.#unread = unread
    }
    this.#changed()
  }

  /**
   * A live activity arrived after the subscription. If it is the one the mark points at (marked before it arrived, say
   * from the answer to the app's own post), it is the newest held and nothing after it is unread.
   */
  activityArrived (cursor: string): void {
    if (cursor === this.#readCursor) this.#unread = 0
    else if (this.#unread !== null) this.#unread++
    else return
    this.#changed()
  }

  /** Moves this user's mark to `cursor` (a `markRead`, or the server's word); false when it would not move forward. */
  advance (cursor: string): boolean {
    if (!this.mayAdvance(cursor)) return false
    this.#readCursor = cursor
    // Not held: where it stands is unknown, so the count stays until the next subscription gives the server's.
    const after = this.#positions.countAfter(cursor)
    if (after !== undefined) this.#unread = after
    this.#changed()
    return true
  }

  /** A `read` event: `mark` is a user's new mark. */
  markMoved (mark: ReadMark): void {
    this.marksMoved([mark])
  }

  /** An unsolicited `reads`: the marks that moved in one of the server's windows; the other users' stay as they are. */
  marksMoved (marks: readonly ReadMark[]): void {
    if (marks.length === 0) return
    for (const mark of marks) this.#marks.set(mark.userId, mark)
    this.#sorted = undefined
    this.#changed()
  }

  /** A `reads` answer: every mark on the PoV. */
  replaceMarks (marks: readonly ReadMark[]): void {
    this.#marks.clear()
    for (const mark of marks) this.#marks.set(mark.userId, mark)
    this.#sorted = undefined
    this.#changed()
  }

  /**
   * The users whose mark is at or after the activity at `position` (among the held activities). A mark on an activity
   * the client does not hold is left out: it cannot be placed.
   */
  readersAt (position: number): string[] {
    if (position === -1) return []
    const readers: string[] = []
    for (const mark of this.#marks.values()) {
      if (this.#positions.positionOf(mark.cursor) >= position) readers.push(mark.userId)
    }
    return readers.sort()
  }

  /** Forgets everything (the subscription ended, or another user signed in). */
  clear (): void {
    this.#marks.clear()
    this.#sorted = NOTHING_READ.reads
    this.#readCursor = null
    this.#unread = null
    this.value.set(NOTHING_READ)
  }

  get listenerCount (): number {
    return this.value.listenerCount
  }

  #changed (): void {
    this.#sorted ??= Object.freeze([...this.#marks.values()].sort((a, b) => byCodeUnits(a.userId, b.userId)))
    this.value.set(Object.freeze({
      reads: this.#sorted,
      readCursor: this.#readCursor,
      unread: this.#unread
    }))
  }
}
