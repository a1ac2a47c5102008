/**
 * What the Redis broker keeps in Redis, and the two Lua scripts that read and write it atomically.
 *
 * Per PoV, all in one Cluster hash slot thanks to the `{povId}` hash tag:
 * - `<prefix>{<povId>}:h`, a stream: the history, one entry per activity (field `a`, the activity's JSON), trimmed to
 *   the window (`MAXLEN size`, `MINID now - ttl`) and expiring `ttl` after the last publish;
 * - `<prefix>{<povId>}:m`, a small hash: `epoch` (see `cursor.ts`), `last` (the newest stream id) and `dropped`
 *   (the newest id the window has dropped), kept longer than the history so that a quiet PoV's cursors stay valid;
 * - channel `<prefix>{<povId>}`: every entry as `<cursor>\n<previous stream id>\n<activity JSON>`. The previous id
 *   chains the entries, so a subscriber sees for itself when it missed one and fills the gap from the stream;
 * - with the `presence` option, `<prefix>{<povId>}:p`, a hash of the PoV's members per instance, and channel
 *   `<prefix>{<povId>}:p` for its changes and typing (see `presence.ts`);
 * - with the `readReceipts` option, `<prefix>{<povId>}:r`, a hash of the PoV's read marks, and channel
 *   `<prefix>{<povId>}:r` for the marks that move (see `read-marks.ts`).
 *
 * Outside any PoV's slot, the presence option keeps one sorted set, `<prefix>presence:instances`: each instance's last
 * heartbeat (see `presence.ts`); and every instance listens on channels `<prefix>control` (revocations) and
 * `<prefix>control:<instanceId>` (their confirmations, see `control.ts`).
 *
 * Requires Redis 6.2 or later (XTRIM MINID, exclusive ranges).
 */
import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { StreamPosition } from './cursor.js'

/** A connection the broker runs commands on: a stand-alone Redis, or a Redis Cluster (see `broker.ts`). */
export type RedisClient = Redis | Cluster

/**
 * How the PoV channels are published: `PUBLISH` on a stand-alone Redis, sharded `SPUBLISH` on a Cluster (the channel
 * then lives on the shard that owns the PoV's slot, instead of being broadcast to every node).
 */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH'

/** The keys and channels of one PoV. */
export interface PovKeys {
  readonly history: string
  readonly meta: string
  readonly channel: string
  /** The members hash, and the channel of their changes and of typing. */
  readonly presence: string
  readonly presenceChannel: string
  /** The read marks hash, and the channel of the marks that move. */
  readonly readMarks: string
  readonly readChannel: string
  /** How the scripts publish on these channels. */
  readonly publishCommand: PublishCommand
}

export function povKeys (keyPrefix: string, povId: string, sharded = false): PovKeys {
  const tagged = `${keyPrefix}{${povId}}`
  return {
    publishCommand: sharded ? 'SPUBLISH' : 'PUBLISH',
    history: `${tagged}:h`,
    meta: `${tagged}:m`,
    channel: tagged,
    presence: `${tagged}:p`,
    presenceChannel: `${tagged}:p`,
    readMarks: `${tagged}:r`,
    readChannel: `${tagged}:r`
  }
}

/** The sorted set of instance heartbeats (presence). */
export function instancesKey (keyPrefix: string): string {
  return `${keyPrefix}presence:instances`
}

/** The PoV of a channel named by {@link povKeys}. */
export function povIdOfChannel (keyPrefix: string, channel: string): string {
  return channel.slice(keyPrefix.length + 1, -1)
}

/**
 * Trims the history to the window and returns the newest id it dropped (false when none). The window only ever loses
 * its oldest entries, so the history always holds every entry after `dropped`.
 */
const TRIM = `
local function trim(history, size, oldestKeptMs)
  local dropped = false
  local excess = redis.call('XLEN', history) - size
  if excess > 0 then
    local gone = redis.call('XRANGE', history, '-', '+', 'COUNT', excess)
    dropped = gone[#gone][1]
    redis.call('XTRIM', history, 'MAXLEN', size)
  end
  local first = redis.call('XRANGE', history, '-', '+', 'COUNT', 1)[1]
  if first and tonumber(string.match(first[1], '^%d+')) < oldestKeptMs then
    dropped = redis.call('XREVRANGE', history, '(' .. oldestKeptMs .. '-0', '-', 'COUNT', 1)[1][1]
    redis.call('XTRIM', history, 'MINID', oldestKeptMs)
  end
  return dropped
end
local function nowMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`

/**
 * KEYS: history, meta. ARGV: channel, activity JSON, size, ttl, meta ttl, an epoch to use if the PoV has none,
 * PUBLISH or SPUBLISH (the channel shares the keys' hash tag, so SPUBLISH stays in their slot). Appends, trims, publishes; returns `{ epoch, id }`.
 */
const PUBLISH = `${TRIM}
local history, meta = KEYS[1], KEYS[2]
local size, ttl, metaTtl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', meta, 'epoch', 'last', 'dropped')
local epoch, prev, dropped = state[1], state[2] or '', state[3] or ''
if not epoch then
  -- A new history (or one whose bookkeeping is gone): entries left from an older one must not join it.
  epoch, prev, dropped = ARGV[6], '', ''
  redis.call('DEL', history)
elseif prev ~= '' and redis.call('EXISTS', history) == 0 then
  -- The history expired (or was evicted): everything up to the last entry is gone.
  dropped = prev
end
local id = redis.call('XADD', history, '*', 'a', ARGV[2])
dropped = trim(history, size, nowMs() - ttl) or dropped
redis.call('HSET', meta, 'epoch', epoch, 'last', id, 'dropped', dropped)
redis.call('PEXPIRE', history, ttl)
redis.call('PEXPIRE', meta, metaTtl)
redis.call(ARGV[7], ARGV[1], epoch .. '.' .. id .. '\\n' .. prev .. '\\n' .. ARGV[2])
return { epoch, id }
`

/**
 * KEYS: history, meta. ARGV: epoch ('' = the PoV had none), since (a stream id, '' = from the epoch's start),
 * size, ttl, and '1' to get the whole history back when the gap cannot be filled.
 * Returns `{ status, epoch, last, id1, json1, id2, json2, ... }`: status `ok` with the entries after `since`, or
 * `lost` (the history no longer holds all of them) with the whole current history when asked for.
 */
const RANGE = `${TRIM}
local history, meta = KEYS[1], KEYS[2]
local wantedEpoch, since = ARGV[1], ARGV[2]
local state = redis.call('HMGET', meta, 'epoch', 'last', 'dropped')
local epoch, last, dropped = state[1], state[2] or '', state[3] or ''
if not epoch then
  return { (wantedEpoch == '' and since == '') and 'ok' or 'lost', '', '' }
end
local trimmed = trim(history, tonumber(ARGV[3]), nowMs() - tonumber(ARGV[4]))
if trimmed then
  dropped = trimmed
  redis.call('HSET', meta, 'dropped', dropped)
end
local intact
if wantedEpoch ~= '' and wantedEpoch ~= epoch then
  intact = false
elseif since == '' then
  intact = dropped == ''
else
  intact = since == last or since == dropped or #redis.call('XRANGE', history, since, since) == 1
end
local reply = { intact and 'ok' or 'lost', epoch, last }
if intact or ARGV[5] == '1' then
  local from = since == '' and '-' or '(' .. since
  if not intact then from = '-' end
  for _, entry in ipairs(redis.call('XRANGE', history, from, '+')) do
    reply[#reply + 1] = entry[1]
    reply[#reply + 1] = entry[2][2]
  end
end
return reply
`

/**
 * KEYS: history, meta. ARGV: epoch, since (a stream id; '' = count them all), size, ttl.
 * Returns how many entries the history window holds after `since`: all of them when `since` is '' or of another epoch.
 */
const COUNT = `${TRIM}
local history, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then return 0 end
local trimmed = trim(history, tonumber(ARGV[3]), nowMs() - tonumber(ARGV[4]))
if trimmed then redis.call('HSET', meta, 'dropped', trimmed) end
if ARGV[1] ~= epoch or ARGV[2] == '' then return redis.call('XLEN', history) end
return #redis.call('XRANGE', history, '(' .. ARGV[2], '+')
`

/** A Lua script and its SHA1, for {@link run}. */
export interface LuaScript { readonly lua: string, readonly sha: string }

export function script (lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/** The publish script: it appends one activity to its PoV's history and publishes it, atomically (`publish-batch.ts`). */
export const publishScript = script(PUBLISH)
const rangeScript = script(RANGE)
const countScript = script(COUNT)

/** EVALSHA, falling back to EVAL when Redis does not have the script (a fresh or restarted server). */
export async function run (redis: RedisClient, { lua, sha }: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args)
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
    return await redis.eval(lua, keys.length, ...keys, ...args)
  }
}

/**
 * EVAL, for a script whose calls must take effect in the order they were made: with {@link run}, a call that found no
 * script is sent again after calls made later may already have run (another client can load the script in between).
 */
export async function runInOrder (redis: RedisClient, { lua }: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  return await redis.eval(lua, keys.length, ...keys, ...args)
}

/** The history window the scripts keep: entries, their lifetime, and how long the bookkeeping outlives them (ms). */
export interface Window {
  readonly size: number
  readonly ttl: number
  readonly metaTtl: number
}

/** One history entry as the range script returns it. */
export interface StoredEntry {
  readonly id: string
  readonly json: string
}

export interface RangeResult {
  /** `true` when `entries` are exactly the entries after the position asked for. */
  readonly intact: boolean
  /** The history's current epoch and newest id (`''` when the PoV has none). */
  readonly epoch: string
  readonly last: string
  /** The entries after the position (intact), or the whole history (not intact, when asked for), oldest first. */
  readonly entries: StoredEntry[]
}

/**
 * The entries after `since`, if the history still holds all of them. With `wholeHistoryIfLost`, a gap that cannot
 * be filled returns the whole current history instead (what a live feed continues from).
 */
export async function readAfter (
  redis: RedisClient, keys: PovKeys, window: Window, since: StreamPosition, wholeHistoryIfLost: boolean
): Promise<RangeResult> {
  const reply = await run(redis, rangeScript, [keys.history, keys.meta],
    [since.epoch, since.id, window.size, window.ttl, wholeHistoryIfLost ? '1' : '0']) as string[]
  const entries: StoredEntry[] = []
  for (let i = 3; i < reply.length; i += 2) entries.push({ id: reply[i]!, json: reply[i + 1]! })
  return { intact: reply[0] === 'ok', epoch: reply[1]!, last: reply[2]!, entries }
}

/** How many entries the history window holds after `since` (all of them for undefined or a position of another epoch). */
export async function countAfter (redis: RedisClient, keys: PovKeys, window: Window, since: StreamPosition | undefined): Promise<number> {
  return await run(redis, countScript, [keys.history, keys.meta],
    [since?.epoch ?? '', since?.id ?? '', window.size, window.ttl]) as number
}

/** One entry as it arrives on a PoV's channel. */
export interface ChannelEntry {
  /** `<epoch>.<id>`, as the message carries it: the cursor of the frame, decoded once. */
  readonly cursor: string
  readonly epoch: string
  readonly id: string
  /** The stream id of the entry before it in the history (`''` for the first of an epoch). */
  readonly prev: string
  /** The activity's JSON as UTF-8 bytes, as Redis sent them: spliced into the frame without being decoded. */
  readonly json: Buffer
}

const NEWLINE = 0x0a

/**
 * Parses a channel message written by the publish script; undefined for anything else. The message stays bytes:
 * only the short cursor and previous id (ASCII) become strings.
 */
export function parseChannelEntry (message: Buffer): ChannelEntry | undefined {
  const first = message.indexOf(NEWLINE)
  const second = first === -1 ? -1 : message.indexOf(NEWLINE, first + 1)
  if (second === -1) return undefined
  const cursor = message.toString('latin1', 0, first)
  const dot = cursor.indexOf('.')
  if (dot === -1) return undefined
  return {
    cursor,
    epoch: cursor.slice(0, dot),
    id: cursor.slice(dot + 1),
    prev: message.toString('latin1', first + 1, second),
    json: message.subarray(second + 1)
  }
}
