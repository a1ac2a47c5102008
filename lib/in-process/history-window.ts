/**
 * The in-process replay window: per PoV, the last `size` entries younger than `ttl`.
 *
 * Entries carry a sequence number that grows across all PoVs of one broker, so a cursor stays meaningful even when
 * a PoV's bookkeeping is evicted. A replay is `recovered` only when every entry after the requested point is still
 * held; whenever that cannot be proven, it says so (`recovered: false`) instead of replaying a partial gap.
 */
import type { BrokerEntry, HistoryOptions, Replay } from '../broker.js'

export interface HistoryEntry extends BrokerEntry {
  readonly seq: number
  readonly at: number
}

interface PovHistory {
  entries: HistoryEntry[]
  /** The highest seq this PoV has dropped (by size or age); a replay from before it cannot be exact. */
  droppedUpTo: number
}

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

export class HistoryWindow {
  readonly #size: number
  readonly #ttl: number
  readonly #maxPovs: number
  /** Insertion order is recency of publication: the first key is the least recently published PoV. */
  readonly #povs = new Map<string, PovHistory>()
  /** The highest seq of any PoV whose bookkeeping was evicted; replays of unknown PoVs from before it are not exact. */
  #forgottenUpTo = 0
  readonly #sweepTimer: NodeJS.Timeout

  /**
   * @param options.size entries kept per PoV
   * @param options.ttl milliseconds an entry is kept
   * @param [maxPovs=50000] PoVs whose bookkeeping is kept; beyond that the least recently published is forgotten
   */
  constructor (options: HistoryOptions, maxPovs = 50_000) {
    this.#size = options.size
    this.#ttl = options.ttl
    this.#maxPovs = maxPovs
    // Expired entries are also pruned lazily; the sweep only bounds memory held by PoVs that went quiet.
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.min(options.ttl, 60_000)).unref()
  }

  append (povId: string, entry: HistoryEntry): void {
    let pov = this.#povs.get(povId)
    if (pov) {
      this.#povs.delete(povId) // re-insert below: most recently published last
    } else {
      pov = { entries: [], droppedUpTo: 0 }
      this.#evictIfFull()
    }
    this.#povs.set(povId, pov)
    pov.entries.push(entry)
    if (pov.entries.length > this.#size) pov.droppedUpTo = pov.entries.shift()!.seq
    this.#prune(pov, entry.at)
  }

  /** The entries of `povId` with a seq above `sinceSeq`, if none of them has been dropped. */
  replay (povId: string, sinceSeq: number, now = Date.now()): Replay {
    const pov = this.#povs.get(povId)
    if (!pov) return sinceSeq >= this.#forgottenUpTo ? { recovered: true, entries: [] } : NOT_RECOVERED
    this.#prune(pov, now)
    if (sinceSeq < pov.droppedUpTo) return NOT_RECOVERED
    const firstAfter = pov.entries.findIndex((entry) => entry.seq > sinceSeq)
    return { recovered: true, entries: firstAfter === -1 ? [] : pov.entries.slice(firstAfter) }
  }

  /** How many entries of `povId` the window holds with a seq above `afterSeq` (0 for a PoV it holds nothing of). */
  countAfter (povId: string, afterSeq: number, now = Date.now()): number {
    const pov = this.#povs.get(povId)
    if (!pov) return 0
    this.#prune(pov, now)
    const firstAfter = pov.entries.findIndex((entry) => entry.seq > afterSeq)
    return firstAfter === -1 ? 0 : pov.entries.length - firstAfter
  }

  close (): void {
    clearInterval(this.#sweepTimer)
    this.#povs.clear()
  }

  #prune (pov: PovHistory, now: number): void {
    const oldestKept = now - this.#ttl
    let expired = 0
    while (expired < pov.entries.length && pov.entries[expired]!.at < oldestKept) expired++
    if (expired > 0) pov.droppedUpTo = pov.entries.splice(0, expired).at(-1)!.seq
  }

  #evictIfFull (): void {
    if (this.#povs.size < this.#maxPovs) return
    const [oldestId, oldest] = this.#povs.entries().next().value!
    this.#povs.delete(oldestId)
    const lastSeq = oldest.entries.at(-1)?.seq ?? oldest.droppedUpTo
    this.#forgottenUpTo = Math.max(this.#forgottenUpTo, lastSeq)
  }

  #sweep (): void {
    const now = Date.now()
    for (const pov of this.#povs.values()) this.#prune(pov, now)
  }
}
