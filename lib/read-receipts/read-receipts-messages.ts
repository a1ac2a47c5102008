/**
 * One socket's side of read receipts (the `readReceipts` option): its `read` and `reads` messages, and its read state
 * for `subscribed`. It sees the socket's session only through `ReadReceiptsSession`. A failing store costs the client
 * an answer (logged), never its connection.
 */
import type { FastifyBaseLogger } from 'fastify'
import { ErrorCode } from '../../types/wire-constants.js'
import type { ReadMessage, ReadsMessage, ReadsRequest } from '../../types/messages.js'
import type { ReadReceiptsFeature, ReadState } from './read-receipts-feature.js'

/** What read receipts need of a socket's session. */
export interface ReadReceiptsSession {
  readonly userId: string
  readonly log: FastifyBaseLogger
  /** Whether the socket's subscription to `povId` was authorized (and not ended). */
  watches (povId: string): boolean
  /** Answers the client with an `error` (counted as a rejection). */
  sendError (code: ErrorCode, message: string, povId?: string): void
  /** Answers one of the client's requests. */
  answer (message: ReadsMessage): void
}

export class ReadReceiptsMessages {
  readonly #feature: ReadReceiptsFeature
  readonly #session: ReadReceiptsSession

  constructor (feature: ReadReceiptsFeature, session: ReadReceiptsSession) {
    this.#feature = feature
    this.#session = session
  }

  /** A `read` or `reads` message of the socket. */
  received (message: ReadMessage | ReadsRequest): Promise<void> {
    switch (message.type) {
      case 'read': return this.#onRead(message)
      case 'reads': return this.#onReads(message)
    }
  }

  /** The user's read state on `povId` for `subscribed`: none when the store failed. */
  async stateOf (povId: string): Promise<Partial<ReadState>> {
    try {
      return await this.#feature.stateOf(povId, this.#session.userId)
    } catch (err) {
      this.#session.log.warn({ err, povId }, 'pov-realtime: read marks unavailable; subscribed goes without the read state')
      return {}
    }
  }

  /** `read`: its answer is the `read` event that every subscriber gets, this socket included (none for an older cursor). */
  async #onRead ({ povId, cursor }: ReadMessage): Promise<void> {
    if (!this.#watched(povId, 'read')) return
    try {
      await this.#feature.markChecked(this.#session.userId, povId, cursor)
    } catch (err) {
      if ((err as { code?: unknown }).code === 'POV_REALTIME_INVALID_CURSOR') {
        return this.#session.sendError(ErrorCode.INVALID_MESSAGE, "'cursor' is not one of this PoV's cursors", povId)
      }
      this.#session.log.warn({ err, povId }, 'pov-realtime: read marks unavailable; a read mark was not recorded')
    }
  }

  async #onReads ({ povId }: ReadsRequest): Promise<void> {
    if (!this.#watched(povId, 'reads')) return
    try {
      this.#session.answer({ type: 'reads', povId, reads: await this.#feature.recentReads(povId) })
    } catch (err) {
      this.#session.log.warn({ err, povId }, 'pov-realtime: read marks unavailable; a reads request went unanswered')
    }
  }

  /**
   * Whether the socket watches `povId`; otherwise it is answered `INVALID_MESSAGE`, so that a socket that may not
   * watch a PoV learns nothing of its marks. (The parser already answered `NOT_ENABLED` while the option is off.)
   */
  #watched (povId: string, type: 'read' | 'reads'): boolean {
    if (this.#session.watches(povId)) return true
    this.#session.sendError(ErrorCode.INVALID_MESSAGE, `subscribe to this PoV before sending '${type}'`, povId)
    return false
  }
}
