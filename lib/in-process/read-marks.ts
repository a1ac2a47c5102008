/**
 * The in-process broker's read marks: one per user per PoV, in memory, so they outlive the history window but not
 * the process (as the history does not either).
 *
 * Bounded per user and per PoV, never in all, so that one user's marks never push out another user's: beyond
 * `maxPerUser` marks, that user's least recently moved mark is forgotten; beyond `maxPerPov` marks on one PoV (only a
 * PoV read by that many users), its least recently moved mark is. A forgotten mark's user then counts the whole
 * window as unread on that PoV again.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { ReadMark } from '../../types/messages.js'
import type { ReadMarkStore, ReadSink } from '../broker.js'
import { InvalidCursorError } from '../errors.js'
import { comparePositions, type Position } from './cursor.js'

/** What the store needs of the broker it belongs to. */
export interface ReadMarkFeed {
  /** The position of a cursor the broker issued for `povId`, or undefined for any other string. */
  positionOf (povId: string, cursor: string): Position | undefined
  /** How many of `povId`'s activities the history holds after `after` (all for `null`); `null` with history off. */
  countAfter (povId: string, after: Position | null): number | null
}

/** A bound that forgot a mark. */
export type ReadMarkLimit = 'readMarksPerUser' | 'readMarksPerPov'

export interface ReadMarkBounds {
  /** Marks one user may hold (on as many PoVs). */
  readonly maxPerUser: number
  /** Marks one PoV may hold (of as many users). */
  readonly maxPerPov: number
}

/** Where the store reports a bound that forgot a mark: the broker's log and the plugin's counters. */
export interface ReadMarkReport {
  readonly log: FastifyBaseLogger
  readonly tripped: (limit: ReadMarkLimit) => void
}

/**
 * Cursors remembered once verified, over all PoVs. On a busy PoV every reader marks each new activity, but not in
 * step: a reader that fell behind sends the marks of its last few dozen activities together, then the next reader
 * the same ones, so the cursors of the last few dozen activities come back interleaved. Bounded in all, not per PoV,
 * so that many PoVs with marks cost no more than one.
 */
const VERIFIED_CURSORS = 256

/** A cursor that passed the check: for which PoV, and its position. */
interface VerifiedCursor {
  readonly povId: string
  readonly position: Position
}

/** A mark as kept: its user is the key it is stored under. */
interface StoredMark extends Position {
  readonly cursor: string
  readonly readAt: string
}

/** One PoV's marks by user, in recency order (the first is the least recently moved). */
interface PovMarks {
  readonly marks: Map<string, StoredMark>
  /** Its bound has forgotten a mark of it (the warning is logged once per PoV). */
  warned: boolean
}

/** The PoVs one user has a mark on, in the same order. */
interface UserMarks {
  readonly povs: Set<string>
  /** Its bound has forgotten a mark of it (the warning is logged once per user). */
  warned: boolean
}

export class InProcessReadMarks implements ReadMarkStore {
  readonly #feed: ReadMarkFeed
  readonly #bounds: ReadMarkBounds
  readonly #byPov = new Map<string, PovMarks>()
  readonly #byUser = new Map<string, UserMarks>()
  /**
   * The last `VERIFIED_CURSORS` cursors verified, by cursor (the oldest first): the readers of a busy PoV's newest
   * activities mark the same few cursors, whose tags are then checked once, not once per reader. Only cursors that
   * passed the check are kept.
   */
  readonly #verified = new Map<string, VerifiedCursor>()
  #count = 0
  #sink: ReadSink | undefined
  #report: ReadMarkReport | undefined

  /**
   * @param feed the broker's cursors and history
   * @param bounds marks kept per user and per PoV
   */
  constructor (feed: ReadMarkFeed, bounds: ReadMarkBounds) {
    this.#feed = feed
    this.#bounds = bounds
  }

  /** Marks kept now. */
  get size (): number {
    return this.#count
  }

  /** Where a bound that forgets a mark is reported (the broker calls it when it starts). */
  reportTo (report: ReadMarkReport): void {
    this.#report = report
  }

  start (sink: ReadSink): void {
    this.#sink = sink
  }

  async markRead (povId: string, userId: string, cursor: string, readAt: string): Promise<ReadMark | null> {
    const position = this.#positionOf(povId, cursor)
    if (position === undefined) throw new InvalidCursorError(`not a cursor of PoV ${povId} (never issued for it, or from before a restart)`)
    let ofPov = this.#byPov.get(povId)
    const current = ofPov?.marks.get(userId)
    if (current && comparePositions(current, position) >= 0) return null
    let ofUser = this.#byUser.get(userId)
    if (!ofPov) this.#byPov.set(povId, ofPov = { marks: new Map(), warned: false })
    if (!ofUser) this.#byUser.set(userId, ofUser = { povs: new Set(), warned: false })
    // Deleted first, so that each one's order stays the order its marks last moved in.
    if (current) {
      ofPov.marks.delete(userId)
      ofUser.povs.delete(povId)
    } else {
      this.#count++
    }
    ofPov.marks.set(userId, { gen: position.gen, seq: position.seq, cursor, readAt })
    ofUser.povs.add(povId)
    // Neither forgets the mark just moved: it is the newest of both.
    if (ofUser.povs.size > this.#bounds.maxPerUser) {
      this.#forget(userId, ofUser.povs.values().next().value!)
      this.#tripped('readMarksPerUser', ofUser, { userId, max: this.#bounds.maxPerUser },
        'pov-realtime: a user has more read marks than the in-process bound; their least recently moved one is forgotten')
    }
    if (ofPov.marks.size > this.#bounds.maxPerPov) {
      this.#forget(ofPov.marks.keys().next().value!, povId)
      this.#tripped('readMarksPerPov', ofPov, { povId, max: this.#bounds.maxPerPov },
        'pov-realtime: a PoV has more read marks than the in-process bound; its least recently moved one is forgotten')
    }
    this.#sink?.read(povId, { userId, cursor, readAt })
    return { userId, cursor, readAt }
  }

  async reads (povId: string): Promise<ReadMark[]> {
    const marks = this.#byPov.get(povId)?.marks ?? []
    return [...marks].map(([userId, { cursor, readAt }]) => ({ userId, cursor, readAt }))
  }

  async markOf (povId: string, userId: string): Promise<ReadMark | null> {
    const stored = this.#byPov.get(povId)?.marks.get(userId)
    return stored ? { userId, cursor: stored.cursor, readAt: stored.readAt } : null
  }

  async unreadAfter (povId: string, cursor: string | null): Promise<number | null> {
    // No mark, or one this start never issued: everything the window holds is after it.
    return this.#feed.countAfter(povId, cursor === null ? null : this.#feed.positionOf(povId, cursor) ?? null)
  }

  /** Forgets every mark (the broker closed). */
  clear (): void {
    this.#byPov.clear()
    this.#byUser.clear()
    this.#verified.clear()
    this.#count = 0
  }

  /** The position of `cursor` if the broker issued it for `povId`: remembered, or checked and then remembered. */
  #positionOf (povId: string, cursor: string): Position | undefined {
    const verified = this.#verified.get(cursor)
    if (verified?.povId === povId) return verified.position
    const position = this.#feed.positionOf(povId, cursor)
    if (position === undefined) return undefined
    this.#verified.set(cursor, { povId, position })
    if (this.#verified.size > VERIFIED_CURSORS) this.#verified.delete(this.#verified.keys().next().value!)
    return position
  }

  /** Forgets `userId`'s mark on `povId`; a user or PoV left without marks goes with it. */
  #forget (userId: string, povId: string): void {
    const ofPov = this.#byPov.get(povId)!
    const ofUser = this.#byUser.get(userId)!
    ofPov.marks.delete(userId)
    ofUser.povs.delete(povId)
    if (ofPov.marks.size === 0) this.#byPov.delete(povId)
    if (ofUser.povs.size === 0) this.#byUser.delete(userId)
    this.#count--
  }

  #tripped (limit: ReadMarkLimit, group: { warned: boolean }, details: Record<string, unknown>, message: string): void {
    this.#report?.tripped(limit)
    if (group.warned) return
    group.warned = true
    this.#report?.log.warn({ limit, ...details }, message)
  }
}
