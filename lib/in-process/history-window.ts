/**
 * The in-process replay window: per PoV, the last `size` entries younger than `ttl`, at most `maxBytes` of them, and
 * at most `maxTotalBytes` for all PoVs together (the least recently published PoVs give way first).
 *
 * Entries carry their position in their PoV (see `pov-sequences.ts`). A replay is `recovered` only when every entry
 * after the requested point is still held; whenever that cannot be proven (an entry dropped by size, age or bytes, or
 * the PoV's bookkeeping forgotten), it says so (`recovered: false`) instead of replaying a partial gap.
 */
import type { BrokerEntry, HistoryOptions, Replay } from '../broker.js'
import { comparePositions, type Position } from './cursor.js'

export interface HistoryEntry extends BrokerEntry, Position {
  readonly at: number
}

/** A bound that dropped entries: `historyMaxBytes` (the PoV's own) or `historyMaxTotalBytes` (all PoVs'). */
export type HistoryLimit = 'historyMaxBytes' | 'historyMaxTotalBytes'

/**
 * Told when a bound dropped entries that size and age would have kept: once per append for the PoV appended to
 * (`historyMaxBytes`), or for the PoV that gave way (`historyMaxTotalBytes`). `first` is true the first time it
 * happens to that PoV's bookkeeping, for a log line per PoV rather than per activity.
 */
export type HistoryTripped = (limit: HistoryLimit, povId: string, first: boolean) => void

interface PovHistory {
  readonly povId: string
  entries: HistoryEntry[]
  /** The frames' bytes held. */
  bytes: number
  /**
   * The newest position this PoV's bookkeeping has dropped, or the one just before its first entry when the
   * bookkeeping is new (what came before is unknown to it): a replay from before it cannot be exact.
   */
  dropped: Position
  /** The limits this PoV has tripped (for `first`). */
  tripped: Set<HistoryLimit> | undefined
}

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

export interface HistoryWindowOptions {
  /** PoVs whose bookkeeping is kept; beyond that the least recently published is forgotten. Default 50,000. */
  readonly maxPovs?: number
  /** Told when a byte bound drops entries. */
  readonly tripped?: HistoryTripped
}

export class HistoryWindow {
  readonly #size: number
  readonly #ttl: number
  readonly #maxBytes: number
  readonly #maxTotalBytes: number
  readonly #maxPovs: number
  readonly #tripped: HistoryTripped
  /** Insertion order is recency of publication: the first key is the least recently published PoV. */
  readonly #povs = new Map<string, PovHistory>()
  /** The PoVs that hold at least one entry, in the same order: those that give way to `maxTotalBytes`. */
  readonly #holding = new Map<string, PovHistory>()
  #totalBytes = 0
  readonly #sweepTimer: NodeJS.Timeout

  /**
   * @param options.size entries kept per PoV
   * @param options.ttl milliseconds an entry is kept
   * @param [options.maxBytes=unbounded] bytes of frames kept per PoV
   * @param [options.maxTotalBytes=unbounded] bytes of frames kept for all PoVs together
   * @param [window.maxPovs=50000] PoVs whose bookkeeping is kept
   */
  constructor (options: HistoryOptions, { maxPovs = 50_000, tripped = () => {} }: HistoryWindowOptions = {}) {
    this.#size = options.size
    this.#ttl = options.ttl
    this.#maxBytes = options.maxBytes ?? Infinity
    this.#maxTotalBytes = options.maxTotalBytes ?? Infinity
    this.#maxPovs = maxPovs
    this.#tripped = tripped
    // Expired entries are also pruned lazily; the sweep only bounds memory held by PoVs that went quiet.
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.min(options.ttl, 60_000)).unref()
  }

  /** Bytes of frames all PoVs' windows hold now. */
  get totalBytes (): number {
    return this.#totalBytes
  }

  append (povId: string, entry: HistoryEntry): void {
    let pov = this.#povs.get(povId)
    if (pov) {
      this.#povs.delete(povId) // re-inserted below: most recently published last
      this.#holding.delete(povId)
    } else {
      this.#evictIfFull()
      pov = { povId, entries: [], bytes: 0, dropped: { gen: entry.gen, seq: entry.seq - 1 }, tripped: undefined }
    }
    this.#povs.set(povId, pov)
    this.#holding.set(povId, pov)
    pov.entries.push(entry)
    pov.bytes += entry.frame.length
    this.#totalBytes += entry.frame.length
    this.#prune(pov, entry.at)
    if (pov.entries.length > this.#size) this.#dropOldest(pov)
    if (pov.bytes > this.#maxBytes) {
      while (pov.bytes > this.#maxBytes) this.#dropOldest(pov)
      this.#trip('historyMaxBytes', pov)
    }
    if (this.#totalBytes > this.#maxTotalBytes) this.#makeRoom()
  }

  /** The entries of `povId` after `since`, if none of them has been dropped. */
  replay (povId: string, since: Position, now = Date.now()): Replay {
    const pov = this.#povs.get(povId)
    // A cursor that verifies was issued: a PoV without bookkeeping has had it forgotten, with what came after it.
    if (!pov) return NOT_RECOVERED
    this.#prune(pov, now)
    if (comparePositions(since, pov.dropped) < 0) return NOT_RECOVERED
    const firstAfter = pov.entries.findIndex((entry) => comparePositions(entry, since) > 0)
    return { recovered: true, entries: firstAfter === -1 ? [] : pov.entries.slice(firstAfter) }
  }

  /** How many entries of `povId` the window holds after `after` (all of them for `null`; 0 for a PoV it holds nothing of). */
  countAfter (povId: string, after: Position | null, now = Date.now()): number {
    const pov = this.#povs.get(povId)
    if (!pov) return 0
    this.#prune(pov, now)
    if (after === null) return pov.entries.length
    const firstAfter = pov.entries.findIndex((entry) => comparePositions(entry, after) > 0)
    return firstAfter === -1 ? 0 : pov.entries.length - firstAfter
  }

  close (): void {
    clearInterval(this.#sweepTimer)
    this.#povs.clear()
    this.#holding.clear()
    this.#totalBytes = 0
  }

  #dropOldest (pov: PovHistory): void {
    const entry = pov.entries.shift()!
    pov.bytes -= entry.frame.length
    this.#totalBytes -= entry.frame.length
    pov.dropped = { gen: entry.gen, seq: entry.seq } // not the entry: its frame must be let go
    if (pov.entries.length === 0) this.#holding.delete(pov.povId)
  }

  /** Over `maxTotalBytes`: the least recently published PoVs drop their oldest entries until all fit. */
  #makeRoom (): void {
    while (this.#totalBytes > this.#maxTotalBytes) {
      // The PoV just appended to holds an entry, so there is always one to give way.
      const pov: PovHistory = this.#holding.values().next().value!
      while (pov.entries.length > 0 && this.#totalBytes > this.#maxTotalBytes) this.#dropOldest(pov)
      this.#trip('historyMaxTotalBytes', pov)
    }
  }

  #trip (limit: HistoryLimit, pov: PovHistory): void {
    const first = !pov.tripped?.has(limit)
    if (first) (pov.tripped ??= new Set()).add(limit)
    this.#tripped(limit, pov.povId, first)
  }

  #prune (pov: PovHistory, now: number): void {
    const oldestKept = now - this.#ttl
    while (pov.entries.length > 0 && pov.entries[0]!.at < oldestKept) this.#dropOldest(pov)
  }

  #evictIfFull (): void {
    if (this.#povs.size < this.#maxPovs) return
    const [oldestId, oldest] = this.#povs.entries().next().value!
    this.#povs.delete(oldestId)
    this.#holding.delete(oldestId)
    this.#totalBytes -= oldest.bytes
  }

  #sweep (): void {
    const now = Date.now()
    for (const pov of this.#holding.values()) this.#prune(pov, now)
  }
}
