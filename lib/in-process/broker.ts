/**
 * The default broker: one instance, activities delivered synchronously, history and read marks in memory.
 * Cursors are `<epoch>.<seq>.<tag>` (see `cursor.ts`): the epoch changes with every start, so a cursor
 * from before a restart (whose history is gone) is recognised and answered `recovered: false`, and the tag proves
 * which PoV a cursor was issued for.
 */
import { encodeActivityFrame } from '../activity-frame.js'
import type { Broker, BrokerSink, BrokerStartContext, ControlMessage, Replay } from '../broker.js'
import { MAX_IN_PROCESS_READ_MARKS } from '../constants.js'
import { HistoryWindow } from './history-window.js'
import { InProcessCursors } from './cursor.js'
import { InProcessReadMarks } from './read-marks.js'

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

export class InProcessBroker implements Broker {
  readonly #cursors = new InProcessCursors()
  #seq = 0
  #sink: BrokerSink | undefined
  #history: HistoryWindow | undefined
  readonly readMarks: InProcessReadMarks

  /** @param [options.maxReadMarks=MAX_IN_PROCESS_READ_MARKS] read marks kept in all (see `read-marks.ts`) */
  constructor ({ maxReadMarks = MAX_IN_PROCESS_READ_MARKS }: { maxReadMarks?: number } = {}) {
    this.readMarks = new InProcessReadMarks({
      seqOf: (povId, cursor) => this.#cursors.seqOf(povId, cursor),
      countAfter: (povId, afterSeq) => this.#history ? this.#history.countAfter(povId, afterSeq) : null
    }, maxReadMarks)
  }

  start ({ sink, history }: BrokerStartContext): void {
    this.#sink = sink
    this.#history = history ? new HistoryWindow(history) : undefined
  }

  async publish (povId: string, activityJson: string): Promise<{ cursor: string, delivered: number }> {
    const seq = ++this.#seq
    const cursor = this.#cursors.format(povId, seq)
    const entry = { seq, cursor, frame: encodeActivityFrame(cursor, activityJson), at: Date.now() }
    this.#history?.append(povId, entry)
    const delivered = this.#sink!.deliver(povId, entry)
    return { cursor, delivered }
  }

  watch (): void {}

  unwatch (): void {}

  async replay (povId: string, since: string): Promise<Replay> {
    const seq = this.#cursors.seqOf(povId, since)
    if (seq === undefined || !this.#history) return NOT_RECOVERED
    return this.#history.replay(povId, seq)
  }

  /** One instance: applied here, and so everywhere, before it resolves. */
  async control (message: ControlMessage): Promise<void> {
    this.#sink!.control?.(message)
  }

  async close (): Promise<void> {
    this.#history?.close()
    this.readMarks.clear()
  }
}
