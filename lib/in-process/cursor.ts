/**
 * The in-process broker's cursors: `<epoch>.<seq>.<tag>`, for example `Xq3J9aZ0.1z.k3Jd_8aQ`.
 *
 * - `seq` (base 36) numbers every activity the broker publishes, across all PoVs, so it orders each PoV's activities.
 * - `epoch` changes with every start, so a cursor from before a restart (whose history and read marks are gone) is
 *   recognised as such.
 * - `tag`, 48 bits of a keyed SHA-256 of PoV and seq, proves that the cursor was issued for that PoV (a read mark
 *   needs that) without keeping every cursor ever issued. A keyed hash rather than an HMAC because it runs on every
 *   broadcast; the cost and why it is safe: docs/architecture.md, "The in-process cursor's tag".
 *
 * Every part fits the protocol's cursor alphabet (`[A-Za-z0-9_.:-]`).
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Characters of the digest kept: 8 base64url characters are 48 bits. */
const TAG_LENGTH = 8
const SEQ = /^[0-9a-z]{1,11}$/

export class InProcessCursors {
  readonly #epoch = randomBytes(6).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
  /** 256 random bits, as the text the hash's input starts with. */
  readonly #key = randomBytes(32).toString('base64')

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
    // The key has a fixed length and a PoV id has no newline, so the input names exactly one (PoV, seq) pair.
    return hash('sha256', `${this.#key}${povId}\n${digits}`, 'base64url').slice(0, TAG_LENGTH)
  }
}
