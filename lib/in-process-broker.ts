/**
 * The default broker: one instance, activities delivered synchronously, history in memory.
 * Cursors are `<epoch>.<seq>`: the epoch changes with every start, so a cursor from before a restart
 * (whose history is gone) is recognised and answered `recovered: false`.
 */
import { randomBytes } from 'node:crypto'
import { encodeActivityFrame } from './activity-frame.js'
import type { Broker, BrokerSink, BrokerStartContext, Replay } from './broker.js'
import { HistoryWindow } from './history-window.js'

const NOT_RECOVERED: Replay = { recovered: false, entries: [] }

export class InProcessBroker implements Broker {
  readonly #epoch = randomBytes(6).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
  #seq = 0
  #sink: BrokerSink | undefined
  #history: HistoryWindow | undefined

  start ({ sink, history }: BrokerStartContext): void {
    this.#sink = sink
    this.#history = history ? new HistoryWindow(history) : undefined
  }

  async publish (povId: string, activityJson: string): Promise<{ cursor: string, delivered: number }> {
    const seq = ++this.#seq
    const cursor = `${this.#epoch}.${seq.toString(36)}`
    const entry = { seq, cursor, frame: encodeActivityFrame(cursor, activityJson), at: Date.now() }
    this.#history?.append(povId, entry)
    const delivered = this.#sink!.deliver(povId, entry)
    return { cursor, delivered }
  }

  watch (): void {}

  unwatch (): void {}

  async replay (povId: string, since: string): Promise<Replay> {
    const seq = this.#seqOf(since)
    if (seq === undefined || !this.#history) return NOT_RECOVERED
    return this.#history.replay(povId, seq)
  }

  async close (): Promise<void> {
    this.#history?.close()
  }

  /** The seq of a cursor this broker issued, or undefined for a foreign, stale or malformed one. */
  #seqOf (cursor: string): number | undefined {
    const dot = cursor.lastIndexOf('.')
    if (dot === -1 || cursor.slice(0, dot) !== this.#epoch) return undefined
    const digits = cursor.slice(dot + 1)
    if (!/^[0-9a-z]{1,11}$/.test(digits)) return undefined
    const seq = parseInt(digits, 36)
    return seq <= this.#seq ? seq : undefined
  }
}
