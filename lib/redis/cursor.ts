/**
 * The Redis broker's cursors: `<epoch>.<stream id>`, for example `kq3J9aZ0xYw.1732540800000-0`.
 *
 * The stream id (`<ms>-<seq>`, assigned by XADD) orders a PoV's activities. The epoch is a random name that a PoV's
 * history receives when Redis first creates it; a flushed, replaced or restored Redis that lost the history gives the
 * PoV a new epoch, so a cursor of the old one is recognised and answered `recovered: false` instead of being replayed
 * from the wrong place. Both parts fit the protocol's cursor alphabet (`[A-Za-z0-9_.:-]`).
 */
import { randomBytes } from 'node:crypto'

/** A place in one PoV's history. */
export interface StreamPosition {
  /** The history's epoch; `''` for a PoV that has no history in Redis (yet). */
  readonly epoch: string
  /** The stream id of the entry; `''` before the first one. */
  readonly id: string
}

const CURSOR = /^([A-Za-z0-9]{1,16})\.((?:0|[1-9]\d{0,19})-(?:0|[1-9]\d{0,19}))$/

const EPOCH_LENGTH = 11
/**
 * Epochs drawn at once: every publish sends one (used only if the PoV's history is new). One `randomBytes` call costs
 * about 3 µs; the draw is also encoded and cleaned at once, so that an epoch is a slice of it (about 150 ns per epoch
 * against 250–300 ns encoding each apart).
 */
const EPOCHS_PER_DRAW = 512
let epochPool = ''
let epochOffset = 0

/** A fresh epoch name: 11 random letters and digits (base64url, its `-` and `_` made `0`). */
export function newEpoch (): string {
  if (epochOffset + EPOCH_LENGTH > epochPool.length) {
    // 3 bytes make 4 characters: exactly EPOCH_LENGTH * EPOCHS_PER_DRAW of them.
    epochPool = randomBytes((EPOCH_LENGTH * EPOCHS_PER_DRAW * 3) / 4).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
    epochOffset = 0
  }
  const start = epochOffset
  epochOffset += EPOCH_LENGTH
  return epochPool.slice(start, epochOffset)
}

export function formatCursor (epoch: string, id: string): string {
  return `${epoch}.${id}`
}

/** The position a cursor names, or undefined when it is not one of this broker's cursors. */
export function parseCursor (cursor: string): StreamPosition | undefined {
  const match = CURSOR.exec(cursor)
  return match ? { epoch: match[1]!, id: match[2]! } : undefined
}

/**
 * Orders two stream ids of one stream (`''`, "before the first entry", is the smallest). Both parts are compared as
 * decimal integers of any length (by length, then digits), so no precision is lost on large sequence numbers. It runs
 * for every channel message a feed receives, so it splits at the dash rather than matching a pattern.
 */
export function compareStreamIds (a: string, b: string): number {
  if (a === b) return 0
  if (a === '') return -1
  if (b === '') return 1
  const aDash = a.indexOf('-')
  const bDash = b.indexOf('-')
  return compareDigits(a, 0, aDash, b, 0, bDash) || compareDigits(a, aDash + 1, a.length, b, bDash + 1, b.length)
}

/** Orders the decimal numbers `a[aStart, aEnd)` and `b[bStart, bEnd)` (without leading zeros). */
function compareDigits (a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): number {
  const lengths = (aEnd - aStart) - (bEnd - bStart)
  if (lengths !== 0) return lengths
  for (let i = 0; i < aEnd - aStart; i++) {
    const difference = a.charCodeAt(aStart + i) - b.charCodeAt(bStart + i)
    if (difference !== 0) return difference
  }
  return 0
}
