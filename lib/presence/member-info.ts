/**
 * A member's public face: what `presence.info(user)` returns, checked once per socket and kept serialized, so that
 * every presence message carries the same bounded JSON object and a bad return never reaches a client.
 */
import type { FastifyBaseLogger } from 'fastify'
import { MAX_MEMBER_INFO_BYTES } from '../constants.js'
import type { PovRealtimeUser, ResolvedPresenceOptions } from '../options.js'

/** A checked `info` object and its JSON text. */
export interface MemberInfo {
  readonly value: Readonly<Record<string, unknown>>
  readonly json: string
}

/** The default `info`: nothing about the user but the id is shown. */
export const NO_INFO: MemberInfo = Object.freeze({ value: Object.freeze({}), json: '{}' })

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** Why `value` cannot be a member's `info`, or its checked form. */
function checkInfo (value: unknown): MemberInfo | string {
  if (!isPlainObject(value)) return 'not a plain object'
  let json: unknown
  try {
    json = JSON.stringify(value)
  } catch (err) {
    return `not serializable as JSON (${(err as Error).message})`
  }
  // A `toJSON` may turn the object into something else.
  if (typeof json !== 'string' || !json.startsWith('{')) return 'does not serialize to a JSON object'
  if (Buffer.byteLength(json) > MAX_MEMBER_INFO_BYTES) return `larger than ${MAX_MEMBER_INFO_BYTES} bytes serialized`
  // Parsed back, so that the object shown by `presence(povId)` is exactly what clients receive.
  return { value: JSON.parse(json) as Record<string, unknown>, json }
}

/**
 * Calls `presence.info(user)` and checks what it gives. Never rejects: a throw, a rejection or a bad value is logged
 * at error (it is the app's bug) and the member is shown with `{}`.
 */
export async function resolveMemberInfo (
  options: ResolvedPresenceOptions, user: PovRealtimeUser, log: FastifyBaseLogger
): Promise<MemberInfo> {
  let value: unknown
  try {
    value = await options.info(user)
  } catch (err) {
    log.error({ err, userId: user.userId }, 'pov-realtime: presence.info threw; showing the member with {}')
    return NO_INFO
  }
  const checked = checkInfo(value)
  if (typeof checked === 'string') {
    log.error({ userId: user.userId, reason: checked }, 'pov-realtime: presence.info returned an invalid info; showing the member with {}')
    return NO_INFO
  }
  return checked
}
