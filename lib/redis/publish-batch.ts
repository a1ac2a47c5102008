/**
 * The Redis broker's publishes, gathered per event-loop turn: every `broadcastActivity` of one turn (a burst from a
 * route handler, an import) goes to Redis in one pipeline, one write and one read for all of them, instead of one
 * round trip, one timeout timer and its promises per publish. Each entry is still its own run of the publish script,
 * atomic and touching one PoV's slot only, and the pipeline keeps their order, so a PoV's entries take the stream
 * order of the `broadcastActivity` calls of this instance as before. A `DeadlineSweep` watches every batch in flight
 * with one timer.
 *
 * Each pipeline carries the script's text in its first entry (EVAL) and its SHA in the others (EVALSHA): a Redis that
 * does not have the script (restarted empty, a promoted replica, a new cluster node) loads it with the first entry, so
 * no entry of the pipeline finds it missing. Retrying entries that did would break the order: Redis reads a long
 * pipeline in parts and runs other clients' commands in between, so another instance loading the script mid-pipeline
 * let the later entries run at once and the retried earlier ones land after them. Measured: no cost against EVALSHA
 * alone (Redis hashes the text to find its cached script; sequential single-entry pipelines ran as fast).
 *
 * What a failure means for each entry (`outcomeUnknown` of the broker's rejection) is decided as for a single
 * command: not sent (the connection was not ready or not writable), refused by Redis (a reply error: not run, which
 * includes a NOSCRIPT should an operator flush the scripts in the middle of a pipeline), or unknown (no answer in
 * time, the connection lost after the write).
 */
import { ReplyError } from 'ioredis'
import type { StreamPosition } from './cursor.js'
import { DeadlineSweep, type Deadline } from './deadline-sweep.js'
import { publishScript, type PovKeys, type RedisClient, type Window } from './scripts.js'

/** ioredis's rejection of a command it refused to write because the socket is not writable (it has no code). */
export const UNWRITABLE_MESSAGE = "Stream isn't writeable and enableOfflineQueue options is false"

/**
 * Why a publish failed: `sent` false when it surely never reached Redis; `replied` when Redis refused it; `timedOut`
 * when Redis did not answer in time (a hung or paused Redis: the broker counts it as a fault).
 */
export interface PublishFailure {
  readonly error: Error
  readonly sent: boolean
  readonly replied: boolean
  readonly timedOut?: boolean
}

/** What a batch needs of the broker, read when the batch is sent. */
export interface PublishTarget {
  /** The command connection if commands may be sent now, or why not. */
  connection (): RedisClient | string
  readonly window: Window
  /**
   * On a Redis Cluster: a pipeline may only hold keys of one slot, so each turn's publishes go in one pipeline per PoV
   * (every key of a PoV shares its slot), still one round trip per PoV and turn instead of one per publish.
   */
  readonly pipelinePerPov: boolean
}

interface Entry {
  readonly keys: PovKeys
  readonly json: string
  readonly epochIfNew: string
  readonly resolve: (position: StreamPosition) => void
  readonly reject: (failure: PublishFailure) => void
  /** Redis answered it (or it failed for good): the broker's count of waiting publishes goes down. */
  readonly answered: () => void
  done: boolean
}

class Batch implements Deadline {
  settled = false
  constructor (public entries: Entry[], readonly timeoutMs: number) {}

  expire (): void {
    const error = new Error(`Redis did not answer within ${this.timeoutMs} ms`)
    for (const entry of this.entries) fail(entry, { error, sent: true, replied: false, timedOut: true })
    this.settled = true
  }
}

function fail (entry: Entry, failure: PublishFailure): void {
  if (entry.done) return
  entry.done = true
  entry.reject(failure)
}

export class PublishBatcher {
  readonly #target: PublishTarget
  readonly #timeoutMs: number
  readonly #deadlines: DeadlineSweep
  #gathering: Entry[] = []

  constructor (target: PublishTarget, timeoutMs: number) {
    this.#target = target
    this.#timeoutMs = timeoutMs
    this.#deadlines = new DeadlineSweep(timeoutMs)
  }

  /**
   * Publishes one activity with the publishes of this turn. Resolves with its place in the PoV's history; rejects
   * with a {@link PublishFailure}. `answered` runs once Redis has answered or the publish failed for good.
   */
  publish (keys: PovKeys, json: string, epochIfNew: string, answered: () => void): Promise<StreamPosition> {
    return new Promise((resolve, reject) => {
      if (this.#gathering.length === 0) queueMicrotask(() => this.#send())
      this.#gathering.push({ keys, json, epochIfNew, resolve, reject, answered, done: false })
    })
  }

  /** Stops the deadline timer (the broker is closing: its connections close, and what is in flight rejects). */
  stop (): void {
    this.#deadlines.stop()
  }

  #send (): void {
    const entries = this.#gathering
    this.#gathering = []
    const connection = this.#target.connection()
    if (typeof connection === 'string') {
      const error = new Error(connection)
      for (const entry of entries) {
        entry.answered()
        fail(entry, { error, sent: false, replied: false })
      }
      return
    }
    if (!this.#target.pipelinePerPov) {
      this.#sendBatch(connection, entries)
      return
    }
    const perPov = new Map<string, Entry[]>()
    for (const entry of entries) {
      const ofPov = perPov.get(entry.keys.channel)
      if (ofPov) ofPov.push(entry)
      else perPov.set(entry.keys.channel, [entry])
    }
    for (const ofPov of perPov.values()) this.#sendBatch(connection, ofPov)
  }

  /** Sends `entries` in one pipeline, under one deadline. */
  #sendBatch (connection: RedisClient, entries: Entry[]): void {
    const batch = new Batch(entries, this.#timeoutMs)
    this.#deadlines.add(batch)
    const { size, ttl, metaTtl } = this.#target.window
    const pipeline = connection.pipeline()
    entries.forEach(({ keys, json, epochIfNew }, i) => {
      const args = [2, keys.history, keys.meta, keys.channel, json, size, ttl, metaTtl, epochIfNew, keys.publishCommand] as const
      if (i === 0) pipeline.eval(publishScript.lua, ...args)
      else pipeline.evalsha(publishScript.sha, ...args)
    })
    pipeline.exec().then(
      (results) => this.#answered(batch, results ?? []),
      (err: unknown) => this.#answered(batch, entries.map(() => [err as Error, null]))
    )
  }

  #answered (batch: Batch, results: ReadonlyArray<[Error | null, unknown]>): void {
    const { entries } = batch
    batch.settled = true
    batch.entries = []
    entries.forEach((entry, i) => {
      const [error, reply] = results[i] ?? [new Error('Redis gave no answer for this publish'), null]
      entry.answered()
      if (error) {
        fail(entry, { error, sent: error.message !== UNWRITABLE_MESSAGE, replied: error instanceof ReplyError })
      } else if (!entry.done) {
        entry.done = true
        const [epoch, id] = reply as [string, string]
        entry.resolve({ epoch, id })
      }
    })
  }
}
