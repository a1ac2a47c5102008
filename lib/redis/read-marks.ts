/**
 * The Redis broker's read marks: per PoV (in the PoV's slot) hash `<prefix>{<povId>}:r`, userId → `<cursor> <readAt>`,
 * moved forward only by a script that checks the cursor against the PoV's history bookkeeping and publishes the moved
 * mark on channel `<prefix>{<povId>}:r`, which every instance watching the PoV listens to.
 *
 * A mark outlives the history window and instance restarts: the hash lives {@link READ_MARK_LIFETIME_MS} after the
 * last mark moved on that PoV, and holds one field per user.
 */
import type { ReadMarkStore, ReadSink } from '../broker.js'
import { InvalidCursorError } from '../errors.js'
import type { ReadMark } from '../../types/messages.js'
import { ChannelSet } from './channel-set.js'
import { parseCursor } from './cursor.js'
import type { RedisLink } from './link.js'
import { countAfter, povKeys, run, script, type PovKeys } from './scripts.js'

/** How long a PoV's read marks outlive the last mark that moved there. */
export const READ_MARK_LIFETIME_MS = 30 * 24 * 60 * 60_000

/**
 * KEYS: marks, meta. ARGV: userId, epoch, stream id, stored value, channel, message, lifetime, PUBLISH or SPUBLISH.
 * Returns `invalid` (not a cursor of the PoV's history, or newer than its newest entry), `kept` (not newer than the
 * user's mark; a mark of an older history counts as older) or `moved` (stored and published).
 */
const MARK = `
local function lessDigits(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if am ~= bm then return lessDigits(am, bm) end
  return lessDigits(as, bs)
end
local marks, meta = KEYS[1], KEYS[2]
local epoch, id = ARGV[2], ARGV[3]
local state = redis.call('HMGET', meta, 'epoch', 'last')
if state[1] ~= epoch or not state[2] or older(state[2], id) then return 'invalid' end
local current = redis.call('HGET', marks, ARGV[1])
if current then
  local currentEpoch, currentId = string.match(current, '^([^.]+)%.(%S+)')
  if currentEpoch == epoch and not older(currentId, id) then return 'kept' end
end
redis.call('HSET', marks, ARGV[1], ARGV[4])
redis.call('PEXPIRE', marks, ARGV[7])
redis.call(ARGV[8], ARGV[5], ARGV[6])
return 'moved'
`

const markScript = script(MARK)

/** A moved mark as published: `{ o: origin instance, u, c, r }`. */
interface Published { o?: unknown, u?: unknown, c?: unknown, r?: unknown }

export class RedisReadMarkStore implements ReadMarkStore {
  readonly #link: RedisLink
  readonly #channels: ChannelSet
  /** Watched PoVs by their read channel, with the `watch` calls not yet matched by `unwatch`. */
  readonly #watched = new Map<string, { povId: string, refs: number }>()
  #sink: ReadSink | undefined
  #closed = false

  constructor (link: RedisLink) {
    this.#link = link
    this.#channels = new ChannelSet(link, (channel, message) => this.#onMessage(channel, message.toString()), () => {})
  }

  start (sink: ReadSink): void {
    if (this.#sink || this.#closed) return
    this.#sink = sink
    this.#channels.start()
  }

  async markRead (povId: string, userId: string, cursor: string, readAt: string): Promise<ReadMark | null> {
    const position = parseCursor(cursor)
    if (!position) throw new InvalidCursorError('not a cursor of this broker')
    const keys = this.#keys(povId)
    const message = JSON.stringify({ o: this.#link.instanceId, u: userId, c: cursor, r: readAt })
    const outcome = await this.#link.command((redis) => run(redis, markScript, [keys.readMarks, keys.meta],
      [userId, position.epoch, position.id, `${cursor} ${readAt}`, keys.readChannel, message, READ_MARK_LIFETIME_MS, keys.publishCommand]))
    if (outcome === 'invalid') throw new InvalidCursorError('not one of this PoV\'s cursors, or newer than its latest activity')
    if (outcome !== 'moved') return null
    const mark: ReadMark = { userId, cursor, readAt }
    // This instance's own marks reach its sink at once (they come back on the channel too, and are skipped there).
    this.#sink?.read(povId, mark)
    return mark
  }

  async reads (povId: string): Promise<ReadMark[]> {
    const fields = await this.#link.command((redis) => redis.hgetall(this.#keys(povId).readMarks))
    const marks: ReadMark[] = []
    for (const [userId, value] of Object.entries(fields)) {
      const mark = parseMark(userId, value)
      if (mark) marks.push(mark)
    }
    return marks
  }

  async markOf (povId: string, userId: string): Promise<ReadMark | null> {
    const value = await this.#link.command((redis) => redis.hget(this.#keys(povId).readMarks, userId))
    return value === null ? null : parseMark(userId, value) ?? null
  }

  async unreadAfter (povId: string, cursor: string | null): Promise<number | null> {
    if (!this.#link.history) return null
    const since = cursor === null ? undefined : parseCursor(cursor)
    return await this.#link.command((redis) => countAfter(redis, this.#keys(povId), this.#link.window, since))
  }

  /** The broker watches `povId` now: resolves once the marks that move there reach this instance (or after the broker's timeout). */
  async watch (povId: string): Promise<void> {
    if (!this.#sink || this.#closed) return
    const channel = this.#keys(povId).readChannel
    const watched = this.#watched.get(channel)
    if (watched) {
      watched.refs++
      return
    }
    this.#watched.set(channel, { povId, refs: 1 })
    // A failure is retried by the channel set, until the channel is subscribed or no longer wanted.
    await this.#channels.add(channel).catch(() => {})
  }

  unwatch (povId: string): void {
    const channel = this.#keys(povId).readChannel
    const watched = this.#watched.get(channel)
    if (!watched || --watched.refs > 0) return
    this.#watched.delete(channel)
    this.#channels.delete(channel).catch(() => {})
  }

  close (): void {
    this.#closed = true
    this.#channels.stop()
    this.#watched.clear()
  }

  #keys (povId: string): PovKeys {
    return povKeys(this.#link.keyPrefix, povId, this.#link.sharded)
  }

  #onMessage (channel: string, message: string): void {
    const watched = this.#watched.get(channel)
    if (!watched || !this.#sink) return
    let published: Published
    try {
      published = JSON.parse(message) as Published
    } catch {
      return
    }
    const { o: origin, u: userId, c: cursor, r: readAt } = published
    if (origin === this.#link.instanceId) return
    if (typeof userId !== 'string' || typeof cursor !== 'string' || typeof readAt !== 'string') return
    this.#sink.read(watched.povId, { userId, cursor, readAt })
  }
}

function parseMark (userId: string, value: string): ReadMark | undefined {
  const space = value.indexOf(' ')
  return space === -1 ? undefined : { userId, cursor: value.slice(0, space), readAt: value.slice(space + 1) }
}
