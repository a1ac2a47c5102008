/**
 * The in-process broker's cursors: `<epoch>.<gen>.<seq>.<tag>`, for example `Xq3J9aZ0.kx81h2qz.1z.k3Jd_8aQ`.
 *
 * - `gen` and `seq` (base 36) are the activity's position in its own PoV (see `pov-sequences.ts`): `seq` counts that
 *   PoV's activities only, so a cursor tells nothing of how many activities other PoVs received; `gen` orders the runs
 *   of a PoV whose counter was forgotten and started again.
 * - `epoch` changes with every start, so a cursor from before a restart (whose history and read marks are gone) is
 *   recognised as such.
 * - `tag`, 48 bits of a keyed SHA-256 of PoV and position, proves that the cursor was issued for that PoV (a read
 *   mark needs that) without keeping every cursor ever issued. A keyed hash rather than an HMAC because it runs on
 *   every broadcast; the cost and why it is safe: docs/architecture.md, "The in-process cursor's tag".
 *
 * Every part fits the protocol's cursor alphabet (`[A-Za-z0-9_.:-]`).
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'

/** A place in one PoV's feed: the run of its counter, then the activity's number in that run. */
export interface Position {
  readonly gen: number
  readonly seq: number
}

/** Orders two positions of one PoV (negative when `a` comes first). */
export function comparePositions (a: Position, b: Position): number {
  return a.gen - b.gen || a.seq - b.seq
}

/** Characters of the digest kept: 8 base64url characters are 48 bits. */
const TAG_LENGTH = 8
const NUMBER = /^[0-9a-z]{1,11}$/

export class InProcessCursors {
  readonly #epoch = randomBytes(6).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
  /** 256 random bits, as the text the hash's input starts with. */
  readonly #key = randomBytes(32).toString('base64')

  /** The cursor of the activity at `position` of `povId`. */
  format (povId: string, { gen, seq }: Position): string {
    const digits = `${gen.toString(36)}.${seq.toString(36)}`
    return `${this.#epoch}.${digits}.${this.#tag(povId, digits)}`
  }

  /**
   * The position of `cursor` if it is one this codec issued for `povId`; undefined for a malformed one, one of another
   * PoV or of an earlier start, or a forged one. A cursor that passes was issued, so it is never newer than the PoV's
   * latest activity.
   */
  positionOf (povId: string, cursor: string): Position | undefined {
    const parts = cursor.split('.')
    if (parts.length !== 4) return undefined
    const [epoch, gen, seq, tag] = parts as [string, string, string, string]
    if (epoch !== this.#epoch || !NUMBER.test(gen) || !NUMBER.test(seq)) return undefined
    const expected = Buffer.from(this.#tag(povId, `${gen}.${seq}`))
    const given = Buffer.from(tag)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    return { gen: parseInt(gen, 36), seq: parseInt(seq, 36) }
  }

  #tag (povId: string, digits: string): string {
    // The key has a fixed length and a PoV id has no newline, so the input names exactly one (PoV, position) pair.
    return hash('sha256', `${this.#key}${povId}\n${digits}`, 'base64url').slice(0, TAG_LENGTH)
  }
}
