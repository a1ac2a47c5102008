/**
 * What the Redis broker keeps in Redis for presence, the scripts that change it, and the messages they publish.
 *
 * - Per PoV (in the PoV's slot), hash `<prefix>{<povId>}:p`: one field per member per instance,
 *   `<instanceId>:<userId>` → `{"status","info"}` (JSON), plus `#e` and `#n`, the position of the PoV's last change:
 *   `#e`, the hash's epoch (the Redis time, in ms, when it was created), and `#n`, a counter of its changes. A hash
 *   with members lives {@link PRESENCE_HASH_LIFETIME_MS} after its last write (the instances holding members refresh
 *   it); an empty one, {@link EMPTY_HASH_LIFETIME_MS}.
 * - Channel `<prefix>{<povId>}:p`: each change as `<epoch>.<n>\n<JSON>` (a member's new state, or every member of an
 *   instance gone at once), and typing as `\n<JSON>` (never stored). Numbered changes let a watcher see for itself
 *   whether it missed one (it then reads the hash again) and drop those its snapshot already holds.
 * - Sorted set `<prefix>presence:instances`: each instance's last heartbeat (Redis time, ms), kept
 *   {@link PRESENCE_HASH_LIFETIME_MS} so that a dead instance's leftover fields are recognised as such.
 *
 * Only the scripts write these keys, and each touches one slot.
 */
import secureJson from 'secure-json-parse'
import type { MemberState } from '../broker.js'
import { run, runInOrder, script, type PublishCommand, type RedisClient } from './scripts.js'

/** How long a PoV's members hash outlives its last write; the instances holding members there refresh it hourly. */
export const PRESENCE_HASH_LIFETIME_MS = 24 * 60 * 60_000

/** How long a PoV's members hash outlives its last member (it keeps the position of the last change meanwhile). */
export const EMPTY_HASH_LIFETIME_MS = 60 * 60_000

/** Numbers the change, sets the hash's lifetime, publishes `body` under the change's position. */
const CHANGED = `
local function changed(hash, channel, body, lifetime, emptyLifetime, publishCommand)
  local epoch = redis.call('HGET', hash, '#e')
  if not epoch then
    local time = redis.call('TIME')
    epoch = time[1] .. string.sub(string.format('%06d', tonumber(time[2])), 1, 3)
    redis.call('HSET', hash, '#e', epoch)
  end
  local n = redis.call('HINCRBY', hash, '#n', 1)
  redis.call('PEXPIRE', hash, redis.call('HLEN', hash) > 2 and lifetime or emptyLifetime)
  redis.call(publishCommand, channel, epoch .. '.' .. n .. '\\n' .. body)
  return 1
end
`

/**
 * KEYS: members hash. ARGV: field, state JSON ('' = none), channel, message body, lifetime, empty lifetime, PUBLISH or SPUBLISH.
 * Sets or removes one member; publishes only when that changed something. Returns 1 when it did, else 0.
 */
const ANNOUNCE = `${CHANGED}
local hash, field, value = KEYS[1], ARGV[1], ARGV[2]
if value == '' then
  if redis.call('HDEL', hash, field) == 0 then return 0 end
elseif redis.call('HGET', hash, field) == value then
  return 0
else
  redis.call('HSET', hash, field, value)
end
return changed(hash, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
`

/**
 * KEYS: members hash. ARGV: an instance's field prefix, channel, message body, lifetime, empty lifetime, PUBLISH or SPUBLISH.
 * Removes every member of that instance; publishes one change if there was any. Returns 1 when there was, else 0.
 */
const REMOVE_ORIGIN = `${CHANGED}
local hash, prefix, removed = KEYS[1], ARGV[1], 0
for _, field in ipairs(redis.call('HKEYS', hash)) do
  if string.sub(field, 1, #prefix) == prefix then
    redis.call('HDEL', hash, field)
    removed = removed + 1
  end
end
if removed == 0 then return 0 end
return changed(hash, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`

const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

/**
 * KEYS: instances. ARGV: instance id, ttl, retention, '1' when the instance leaves (its heartbeat is then dated
 * expired, so that any field it could not remove counts as a dead instance's at once).
 */
const HEARTBEAT = `${NOW}
local ttl, retention = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4] == '1' and now - ttl - 1 or now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - retention))
redis.call('PEXPIRE', KEYS[1], retention)
return 1
`

/** KEYS: instances. ARGV: ttl, instance ids. Returns per id 1 (alive), 0 (its heartbeat expired) or -1 (no heartbeat). */
const LIVENESS = `${NOW}
local oldest = now - tonumber(ARGV[1])
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 2))
local result = {}
for i = 1, #ARGV - 1 do
  local score = scores[i]
  if not score then result[i] = -1 elseif tonumber(score) < oldest then result[i] = 0 else result[i] = 1 end
end
return result
`

export const announceScript = script(ANNOUNCE)
const removeOriginScript = script(REMOVE_ORIGIN)
const heartbeatScript = script(HEARTBEAT)
const livenessScript = script(LIVENESS)

/** The keys and channel of one PoV's presence. */
export interface PresenceKeys {
  readonly presence: string
  readonly presenceChannel: string
  readonly publishCommand: PublishCommand
}

/** The hash field of `userId` on instance `origin`. */
export function memberField (origin: string, userId: string): string {
  return `${origin}:${userId}`
}

/** The state as stored and compared (the same state always gives the same text). */
export function encodeState ({ status, info }: MemberState): string {
  return JSON.stringify({ status, info })
}

/**
 * Sets (or, with `null`, removes) one member; resolves whether that changed anything (it was then published). In call
 * order: a member's quick changes (join, then a status) may be in flight together, and the last must win.
 */
export async function announceMember (
  redis: RedisClient, keys: PresenceKeys, origin: string, userId: string, state: MemberState | null
): Promise<boolean> {
  const value = state === null ? '' : encodeState(state)
  const body = JSON.stringify({ o: origin, u: userId, s: state === null ? null : { status: state.status, info: state.info } })
  return await runInOrder(redis, announceScript, [keys.presence],
    [memberField(origin, userId), value, keys.presenceChannel, body, PRESENCE_HASH_LIFETIME_MS, EMPTY_HASH_LIFETIME_MS, keys.publishCommand]) === 1
}

/** Removes every member of instance `origin` on the PoV; resolves whether there was any (their leave was then published). */
export async function removeOrigin (redis: RedisClient, keys: PresenceKeys, origin: string): Promise<boolean> {
  const body = JSON.stringify({ o: origin, g: true })
  return await run(redis, removeOriginScript, [keys.presence],
    [memberField(origin, ''), keys.presenceChannel, body, PRESENCE_HASH_LIFETIME_MS, EMPTY_HASH_LIFETIME_MS, keys.publishCommand]) === 1
}

/** Publishes that `userId` on instance `origin` started or stopped typing (nothing is stored). */
export async function publishTyping (redis: RedisClient, keys: PresenceKeys, origin: string, userId: string, typing: boolean): Promise<void> {
  const message = '\n' + JSON.stringify({ o: origin, u: userId, t: typing })
  await (keys.publishCommand === 'SPUBLISH' ? redis.spublish(keys.presenceChannel, message) : redis.publish(keys.presenceChannel, message))
}

/** Records this instance's heartbeat (or, with `leaving`, dates it expired). */
export async function heartbeat (redis: RedisClient, instancesKey: string, origin: string, ttl: number, leaving = false): Promise<void> {
  await run(redis, heartbeatScript, [instancesKey], [origin, ttl, PRESENCE_HASH_LIFETIME_MS, leaving ? '1' : '0'])
}

/** An instance's liveness as its heartbeats tell it. */
export type Liveness = 'alive' | 'expired' | 'unknown'

const LIVENESS_BATCH = 1000

/** The liveness of each of `origins` (`unknown`: Redis holds no heartbeat of it, for example after a restart). */
export async function livenessOf (redis: RedisClient, instancesKey: string, origins: readonly string[], ttl: number): Promise<Map<string, Liveness>> {
  const result = new Map<string, Liveness>()
  for (let i = 0; i < origins.length; i += LIVENESS_BATCH) {
    const batch = origins.slice(i, i + LIVENESS_BATCH)
    const codes = await run(redis, livenessScript, [instancesKey], [ttl, ...batch]) as number[]
    batch.forEach((origin, j) => result.set(origin, codes[j] === 1 ? 'alive' : codes[j] === 0 ? 'expired' : 'unknown'))
  }
  return result
}

/** The position of a PoV's last change: `[epoch, n]`; `[0, 0]` when the PoV has no hash. */
export type ChangePosition = readonly [epoch: number, n: number]

/** What a PoV's members hash holds, this instance's own members left out. */
export interface PresenceSnapshot {
  readonly position: ChangePosition
  /** Instance → user → state. */
  readonly members: Map<string, Map<string, MemberState>>
}

/** Reads a PoV's members hash. */
export async function readSnapshot (redis: RedisClient, keys: PresenceKeys, self: string): Promise<PresenceSnapshot> {
  const fields = await redis.hgetall(keys.presence)
  const members = new Map<string, Map<string, MemberState>>()
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith('#')) continue
    const colon = field.indexOf(':')
    const state = parseState(value)
    if (colon <= 0 || !state) continue
    const origin = field.slice(0, colon)
    if (origin === self) continue
    let ofOrigin = members.get(origin)
    if (!ofOrigin) members.set(origin, ofOrigin = new Map())
    ofOrigin.set(field.slice(colon + 1), state)
  }
  const epoch = Number(fields['#e'] ?? 0)
  const n = Number(fields['#n'] ?? 0)
  return { position: [epoch, n], members }
}

/** One message on a PoV's presence channel. */
export type PresenceChange =
  | { readonly kind: 'member', readonly position: ChangePosition, readonly origin: string, readonly userId: string, readonly state: MemberState | null }
  | { readonly kind: 'gone', readonly position: ChangePosition, readonly origin: string }
  | { readonly kind: 'typing', readonly origin: string, readonly userId: string, readonly typing: boolean }

interface Body { o?: unknown, u?: unknown, s?: unknown, g?: unknown, t?: unknown }

/** Parses a message written by the scripts or {@link publishTyping}; undefined for anything else. */
export function parseChange (message: string): PresenceChange | undefined {
  const newline = message.indexOf('\n')
  if (newline === -1) return undefined
  const body = parseJson(message.slice(newline + 1)) as Body | undefined
  if (typeof body?.o !== 'string') return undefined
  const origin = body.o
  if (newline === 0) {
    return typeof body.u === 'string' && typeof body.t === 'boolean'
      ? { kind: 'typing', origin, userId: body.u, typing: body.t }
      : undefined
  }
  const [epoch, n] = message.slice(0, newline).split('.').map(Number)
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(n)) return undefined
  const position: ChangePosition = [epoch!, n!]
  if (body.g === true) return { kind: 'gone', position, origin }
  if (typeof body.u !== 'string') return undefined
  if (body.s === null) return { kind: 'member', position, origin, userId: body.u, state: null }
  const state = toState(body.s)
  return state ? { kind: 'member', position, origin, userId: body.u, state } : undefined
}

function parseState (text: string): MemberState | undefined {
  return toState(parseJson(text))
}

function toState (value: unknown): MemberState | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { status, info } = value as { status?: unknown, info?: unknown }
  if (status !== 'active' && status !== 'idle') return undefined
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return undefined
  return { status, info: info as Record<string, unknown> }
}

/** Another instance's `info` is the app's data: parsed without letting a `__proto__` key through. */
function parseJson (text: string): unknown {
  try {
    return secureJson.parse(text, null, { protoAction: 'remove', constructorAction: 'remove' })
  } catch {
    return undefined
  }
}
