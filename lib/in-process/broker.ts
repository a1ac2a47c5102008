/**
 * The default broker: one instance, activities delivered synchronously, history and read marks in memory.
 * Cursors are `<epoch>.<gen>.<seq>.<tag>` (see `cursor.ts`): positions in their own PoV (`pov-sequences.ts`), so they
 * tell nothing of other PoVs; the epoch changes with every start, so a cursor from before a restart (whose history is
 * gone) is recognised and answered `recovered: false`; and the tag proves which PoV a cursor was issued for.
 */
import type { FastifyBaseLogger } from 'fastify'
import { encodeActivityFrame } from '../activity-frame.js'
import type { Broker, BrokerLimit, BrokerSink, BrokerStartContext, ControlMessage, Replay } from '../broker.js'
import { HISTORY_TOTAL_WARN_INTERVAL_MS, MAX_IN_PROCESS_POVS, MAX_READ_MARKS_PER_POV, MAX_READ_MARKS_PER_USER } from '../constants.js'
import { HistoryWindow, type HistoryLimit } from './history-window.js'
import { InProcessCursors } from './cursor.js'
import { PovSequences } from './pov-sequences.js'
import { InProcessReadMarks } from './read-marks.js'

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

export interface InProcessBrokerOptions {
  /** Read marks one user may hold (see `read-marks.ts`). */
  readonly maxReadMarksPerUser?: number
  /** Read marks one PoV may hold. */
  readonly maxReadMarksPerPov?: number
  /** PoVs whose counter and history bookkeeping are kept (the least recently published forgotten first). */
  readonly maxPovs?: number
}

export class InProcessBroker implements Broker {
  readonly #cursors = new InProcessCursors()
  readonly #sequences: PovSequences
  readonly #maxPovs: number
  #sink: BrokerSink | undefined
  #history: HistoryWindow | undefined
  #log: FastifyBaseLogger | undefined
  #limitTripped: (limit: BrokerLimit) => void = () => {}
  #lastTotalWarning = -Infinity
  readonly readMarks: InProcessReadMarks

  /**
   * @param [options.maxReadMarksPerUser=MAX_READ_MARKS_PER_USER] read marks one user may hold
   * @param [options.maxReadMarksPerPov=MAX_READ_MARKS_PER_POV] read marks one PoV may hold
   * @param [options.maxPovs=MAX_IN_PROCESS_POVS] PoVs whose counter and history bookkeeping are kept
   */
  constructor ({
    maxReadMarksPerUser = MAX_READ_MARKS_PER_USER,
    maxReadMarksPerPov = MAX_READ_MARKS_PER_POV,
    maxPovs = MAX_IN_PROCESS_POVS
  }: InProcessBrokerOptions = {}) {
    this.#maxPovs = maxPovs
    this.#sequences = new PovSequences(maxPovs)
    this.readMarks = new InProcessReadMarks({
      positionOf: (povId, cursor) => this.#cursors.positionOf(povId, cursor),
      countAfter: (povId, after) => this.#history ? this.#history.countAfter(povId, after) : null
    }, { maxPerUser: maxReadMarksPerUser, maxPerPov: maxReadMarksPerPov })
  }

  start ({ sink, history, log, limitTripped }: BrokerStartContext): void {
    this.#sink = sink
    this.#log = log
    if (limitTripped) this.#limitTripped = limitTripped
    this.#history = history
      ? new HistoryWindow(history, { maxPovs: this.#maxPovs, tripped: (limit, povId, first) => this.#historyTripped(limit, povId, first) })
      : undefined
    this.readMarks.reportTo({ log, tripped: (limit) => this.#limitTripped(limit) })
  }

  async publish (povId: string, activityJson: string): Promise<{ cursor: string, delivered: number }> {
    const { gen, seq } = this.#sequences.next(povId)
    const cursor = this.#cursors.format(povId, { gen, seq })
    const entry = { gen, seq, cursor, frame: encodeActivityFrame(cursor, activityJson), at: Date.now() }
    this.#history?.append(povId, entry)
    const delivered = this.#sink!.deliver(povId, entry)
    return { cursor, delivered }
  }

  watch (): void {}

  unwatch (): void {}

  async replay (povId: string, since: string): Promise<Replay> {
    const position = this.#cursors.positionOf(povId, since)
    if (position === undefined || !this.#history) return NOT_RECOVERED
    return this.#history.replay(povId, position)
  }

  /** One instance: applied here, and so everywhere, before it resolves. */
  async control (message: ControlMessage): Promise<void> {
    this.#sink!.control?.(message)
  }

  async close (): Promise<void> {
    this.#history?.close()
    this.#sequences.clear()
    this.readMarks.clear()
  }

  /** Counted each time; logged once per PoV for its own bound, at most once a minute for the instance's. */
  #historyTripped (limit: HistoryLimit, povId: string, first: boolean): void {
    this.#limitTripped(limit)
    if (limit === 'historyMaxBytes') {
      if (first) this.#log?.warn({ povId, limit }, 'pov-realtime: a PoV\'s activities outgrew history.maxBytes; its oldest left the replay window')
      return
    }
    const now = Date.now()
    if (now - this.#lastTotalWarning < HISTORY_TOTAL_WARN_INTERVAL_MS) return
    this.#lastTotalWarning = now
    this.#log?.warn({ povId, limit, totalBytes: this.#history?.totalBytes },
      'pov-realtime: the replay windows outgrew history.maxTotalBytes; the least recently published PoVs gave way')
  }
}
