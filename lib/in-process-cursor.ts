/**
 * The in-process broker's cursors: `<epoch>.<seq>.<tag>`, for example `Xq3J9aZ0.1z.k3Jd_8aQ`.
 *
 * - `seq` (base 36) numbers every activity the broker publishes, across all PoVs, so it orders each PoV's activities.
 * - `epoch` changes with every start, so a cursor from before a restart (whose history and read marks are gone) is
 *   recognised as such.
 * - `tag` is a truncated HMAC-SHA256 of the PoV and the seq, under a key drawn at start. It proves that the cursor was
 *   issued for that PoV, which a read mark needs, without keeping every cursor ever issued (the history window forgets
 *   them). Its 48 bits make guessing a valid tag a 1 in 2^48 shot per try.
 *
 * Every part fits the protocol's cursor alphabet (`[A-Za-z0-9_.:-]`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Bytes of the HMAC kept: 6 bytes are 8 base64url characters. */
const TAG_BYTES = 6
const SEQ = /^[0-9a-z]{1,11}$/

export class InProcessCursors {
  readonly #epoch = randomBytes(6).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
  readonly #key = randomBytes(32)

  /** The cursor of the activity numbered `seq` of `povId`. */
  format (povId: string, seq: number): string {
    const digits = seq.toString(36)
    return `${this.#epoch}.${digits}.${this.#tag(povId, digits)}`
  }

  /**
   * The seq of `cursor` if it is one this codec issued for `povId`; undefined for a malformed one, one of another PoV
   * or of an earlier start, or a forged one. A cursor that passes was issued, so it is never newer than the PoV's
   * latest activity.
   */
  seqOf (povId: string, cursor: string): number | undefined {
    const parts = cursor.split('.')
    if (parts.length !== 3) return undefined
    const [epoch, digits, tag] = parts as [string, string, string]
    if (epoch !== this.#epoch || !SEQ.test(digits)) return undefined
    const expected = Buffer.from(this.#tag(povId, digits))
    const given = Buffer.from(tag)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    return parseInt(digits, 36)
  }

  #tag (povId: string, digits: string): string {
    // A PoV id has no newline, so the input names exactly one (PoV, seq) pair.
    return createHmac('sha256', this.#key).update(`${povId}\n${digits}`).digest().subarray(0, TAG_BYTES).toString('base64url')
  }
}
