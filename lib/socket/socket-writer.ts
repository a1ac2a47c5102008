/**
 * Everything one socket is sent goes out here: activities, `read` events, presence and typing, the answers to the
 * client's own requests, pings and close frames. The writer owns how a frame is written (an activity's shared,
 * ready frame straight to the connection, or ws framing the payload), the slow-consumer bound (`maxBufferedBytes`,
 * then close with 4008), the ephemeral share (presence and typing are dropped first), catch-up pacing, and corking.
 *
 * The bound counts every frame: what the server pushes and the answers to the client's own requests alike, so a peer
 * that stops reading while it goes on asking is cut like any slow consumer. It is judged after each write, on ws's
 * `bufferedAmount` (the connection's `writableLength`, corked bytes included, plus what ws's sender holds), so the
 * server never holds more than the bound and one frame for a socket. A catch-up (a resume's replay, and what arrived
 * while it was sent) may be several times the bound by design (a full history window): it is paced by what the client
 * reads instead (see `roomFor`).
 *
 * Corking: the first frame a socket gets in a turn of the event loop is written at once (no added latency, no cost
 * when one frame per turn is the rule); a socket written to again in the same turn is corked, and every corked socket
 * is uncorked when the turn's synchronous work ends, so its other frames leave in one `writev`. On loopback most of a
 * delivery's cost is the system call, so ten broadcasts in one turn cost about two writes per socket instead of ten.
 * "A turn" ends at the next `process.nextTick`: the publisher's synchronous loop, or a broker handing over several
 * messages from one read. Corked bytes count in `ws.bufferedAmount` until then, although the kernel may take them
 * all: the bound is judged only after a flush.
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { CloseCode } from '../../types/wire-constants.js'
import type { ServerMessage } from '../../types/messages.js'
import { wireFrameOf } from '../activity-frame.js'
import { CATCH_UP_BUFFER_SHARE, EPHEMERAL_BUFFER_SHARE } from '../constants.js'
import type { StatsCounters } from '../stats.js'
import type { ActivityReceiver } from '../subscription-index.js'

const TEXT = { binary: false } as const

/**
 * How soon a waiting catch-up looks at the queue again when the connection will not emit `drain`: it does so only
 * after a write that reached its 16 KiB high-water mark, so a queue below that which still leaves no room for a frame
 * (a `maxBufferedBytes` of a few tens of KiB) is looked at on a timer instead.
 */
const CATCH_UP_RECHECK_MS = 10

/** Counts turns that wrote anything: a writer last written in an earlier one writes at once. */
let turn = 1
let endOfTurnScheduled = false
let corkedThisTurn: SocketWriter[] = []

function endTurn (): void {
  endOfTurnScheduled = false
  turn++
  const writers = corkedThisTurn
  corkedThisTurn = []
  for (const writer of writers) writer.endTurn()
}

/** What every writer of an instance shares: one object per instance, not four fields of each socket's writer. */
export interface WriterSettings {
  /** More than this queued once a turn's frames were handed over: the socket is closed as a slow consumer. */
  readonly maxBufferedBytes: number
  /** Past this much queued, presence and typing messages are dropped (activities keep the rest of the room). */
  readonly ephemeralBound: number
  /** A catch-up writes while the queue stays within this (live frames keep the rest of the room). */
  readonly catchUpBound: number
  readonly stats: StatsCounters
}

export function writerSettings (maxBufferedBytes: number, stats: StatsCounters): WriterSettings {
  return {
    maxBufferedBytes,
    ephemeralBound: Math.floor(maxBufferedBytes * EPHEMERAL_BUFFER_SHARE),
    catchUpBound: Math.floor(maxBufferedBytes * CATCH_UP_BUFFER_SHARE),
    stats
  }
}

/** Whose socket it is, for the log line of a slow-consumer close: its session, which has both already. */
export interface WriterOwner {
  readonly log: FastifyBaseLogger
  readonly userId: string
}

export class SocketWriter implements ActivityReceiver {
  readonly #ws: WebSocket
  /** The upgraded connection ws reads and writes (the upgrade request's socket). */
  readonly #socket: Duplex
  /** No extension was negotiated (ws computes `extensions` on each read): ws would frame an activity as we do. */
  readonly #plainFrames: boolean
  readonly #settings: WriterSettings
  readonly #owner: WriterOwner
  /** No more frames: the socket closed, or was cut as a slow consumer (its `close` event may still be on its way). */
  #closed = false
  /** This socket's close is counted in `stats().closed` (see `countClose`). */
  #closeCounted = false
  #lastTurn = 0
  #corked = false

  /**
   * @param ws the session's WebSocket
   * @param socket the connection under it (`request.raw.socket`)
   */
  constructor (ws: WebSocket, socket: Duplex, settings: WriterSettings, owner: WriterOwner) {
    this.#ws = ws
    this.#socket = socket
    this.#plainFrames = ws.extensions === ''
    this.#settings = settings
    this.#owner = owner
  }

  /** Whether the socket takes no more frames. */
  get closed (): boolean {
    return this.#closed
  }

  /**
   * Writes one activity. `wire` is the payload already framed (shared by every recipient of the broadcast); it goes
   * straight to the connection's socket when ws would frame it the same way (an open socket without extensions:
   * ws then writes each frame synchronously, so frames never interleave), else ws frames the payload itself.
   * Closes the socket as a slow consumer once too much is queued to it.
   */
  sendActivity (payload: Buffer, wire: Buffer = wireFrameOf(payload)): boolean {
    const ws = this.#ws
    // A closing socket takes no more data frames (ws drops them, yet adds them to `bufferedAmount`, which would then
    // cut the socket a second time as a slow consumer): nothing is delivered, nothing counted.
    if (this.#closed || ws.readyState !== ws.OPEN) return false
    if (this.#plainFrames) this.#write(wire)
    else ws.send(payload, TEXT)
    this.#bounded()
    // A frame that took the socket past its bound is cut off with the connection: it was not delivered.
    if (this.#closed) return false
    this.#settings.stats.deliveries++
    return true
  }

  /** Writes one serialized server message of a PoV (shared by its recipients); bounded like an activity. */
  sendMessage (payload: Buffer): void {
    // ws drops a frame sent while closing, yet adds it to `bufferedAmount`: it must not count toward the bound.
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return
    this.#ws.send(payload, TEXT)
    this.#bounded()
  }

  /**
   * Writes one serialized presence or typing message (shared by its recipients), unless the socket already has more
   * than its share of `maxBufferedBytes` queued: those are ephemeral, and the first thing dropped for a slow consumer.
   */
  sendEphemeral (payload: Buffer): boolean {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false
    if (this.#ws.bufferedAmount > this.#settings.ephemeralBound) {
      this.#settings.stats.presenceDropped++
      return false
    }
    this.#ws.send(payload, TEXT)
    this.#bounded() // one frame larger than the rest of the bound (a snapshot of a crowded PoV)
    return true
  }

  /**
   * Writes the answer to one of the client's requests. Bounded like an activity: a client that asks without reading
   * the answers is a slow consumer too.
   */
  answer (message: ServerMessage): void {
    if (this.#closed) return
    this.#ws.send(JSON.stringify(message))
    this.#bounded()
  }

  /** A heartbeat ping carrying `payload`, which the peer's pong must echo. */
  ping (payload: Buffer): void {
    if (this.#closed) return
    this.#ws.ping(payload)
    this.#bounded()
  }

  /**
   * Whether `bytes` more of a catch-up (a resume's replay, then what the subscription held meanwhile) may be written
   * now: when nothing is queued, or the queue stays within `CATCH_UP_BUFFER_SHARE` of `maxBufferedBytes` with them.
   * Otherwise the answer is a promise, settled once the client has read enough (false when the socket closed first).
   * So a replay several times the bound reaches a client that reads, however slowly, without the server holding more
   * than the bound for it; a client that reads nothing holds its catch-up until the heartbeat ends it.
   */
  roomFor (bytes: number): boolean | Promise<boolean> {
    if (this.#closed || this.#socket.destroyed) return false
    if (this.#fits(bytes)) return true
    this.#flush() // corked frames wait only for the end of the turn: judge what the kernel left
    if (this.#fits(bytes)) return true
    return this.#queueShrank().then(() => this.roomFor(bytes))
  }

  /** Closes with `code` (counted in stats), unless already closing. */
  close (code: CloseCode, reason: string): void {
    if (this.#closed || this.#ws.readyState >= this.#ws.CLOSING) return
    this.countClose(code)
    this.#ws.close(code, reason)
  }

  /**
   * Counts the close of this socket in `stats().closed`, once: a socket is closed once, whatever else happens on the
   * way (ws closing it for a bad frame after the server's close, a slow consumer's cut after a 1011).
   */
  countClose (code: number): void {
    if (this.#closeCounted) return
    this.#closeCounted = true
    this.#settings.stats.countClosed(code)
  }

  /** Closes with 4008: the client cannot keep up. */
  closeSlowConsumer (): void {
    if (this.#closed) return
    this.#closed = true // no more writes: the queue is already past its bound
    if (this.#closeCounted || this.#ws.readyState >= this.#ws.CLOSING) {
      // Already closing (for a reason counted then, or by the client): no 4008 goes out, only the connection is cut.
      this.#ws.terminate()
      return
    }
    this.#settings.stats.slowConsumerCloses++
    this.countClose(CloseCode.TOO_MANY)
    this.#owner.log.warn({ userId: this.#owner.userId, bufferedAmount: this.#ws.bufferedAmount }, 'pov-realtime: client reads too slowly; closing')
    // The close frame queues behind the data the client is not reading, so the connection is cut as well.
    this.#ws.close(CloseCode.TOO_MANY, 'too slow')
    this.#ws.terminate()
  }

  /** The socket closed: nothing more is written. */
  end (): void {
    this.#closed = true
  }

  /** The turn ended (called by this module only): uncork, then look at what is still queued. */
  endTurn (): void {
    if (this.#flush()) this.#checkBound()
  }

  /** After every write: past the bound, look closer (the check itself is the rare path). */
  #bounded (): void {
    if (this.#ws.bufferedAmount > this.#settings.maxBufferedBytes) this.#checkBound()
  }

  #fits (bytes: number): boolean {
    const queued = this.#ws.bufferedAmount
    return queued === 0 || queued + bytes <= this.#settings.catchUpBound
  }

  /** Settles once the connection's queue emptied or it closed, or after a short while when it will not tell. */
  #queueShrank (): Promise<void> {
    const socket = this.#socket
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => {
        clearTimeout(timer)
        socket.off('drain', done)
        socket.off('close', done)
        resolve()
      }
      socket.once('drain', done)
      socket.once('close', done)
      if (!socket.writableNeedDrain) timer = setTimeout(done, CATCH_UP_RECHECK_MS)
    })
  }

  /** Closes a slow consumer: more than `maxBufferedBytes` queued once the turn's corked frames were handed over. */
  #checkBound (): void {
    if (this.#closed) return
    this.#flush()
    if (this.#ws.bufferedAmount > this.#settings.maxBufferedBytes) this.closeSlowConsumer()
  }

  /** Writes a ready frame: at once when it is the socket's first of this turn, else into the socket's cork. */
  #write (frame: Buffer): void {
    if (!endOfTurnScheduled) {
      endOfTurnScheduled = true
      process.nextTick(endTurn)
    }
    if (this.#lastTurn !== turn) {
      this.#lastTurn = turn
      this.#socket.write(frame)
      return
    }
    if (!this.#corked) {
      this.#corked = true
      this.#socket.cork()
      corkedThisTurn.push(this)
    }
    this.#socket.write(frame)
  }

  /** Sends what the cork holds now (before the turn ends); returns whether anything was corked. */
  #flush (): boolean {
    if (!this.#corked) return false
    this.#corked = false
    this.#socket.uncork()
    return true
  }
}
