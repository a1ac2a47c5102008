/**
 * Checks of the arguments that `fastify.povRealtime` functions get from route handlers: JavaScript callers may pass
 * anything, so each is checked before it reaches a store. A bad one throws `POV_REALTIME_INVALID_ARGUMENT`.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { InvalidArgumentError } from './errors.js'
import { PovId } from '../types/schemas.js'

const checkPovId = TypeCompiler.Compile(PovId)

/** `povId` if it is a valid PoV id. */
export function povIdArgument (povId: unknown): string {
  if (!checkPovId.Check(povId)) throw new InvalidArgumentError('povId must be 1 to 128 letters, digits, _ - . :')
  return povId
}

/** `userId` if it is a non-empty string. */
export function userIdArgument (userId: unknown): string {
  if (typeof userId !== 'string' || userId.length === 0) throw new InvalidArgumentError('userId must be a non-empty string')
  return userId
}

/** What `fastify.povRealtime.revoke` is given. */
export interface RevokeTarget {
  /** The user whose access ends. */
  readonly userId: string
  /** The PoV they lose; without it, every socket of the user is closed with 4003. */
  readonly povId?: string
}

/**
 * `{ userId, povId? }` if well-formed. Unknown keys are refused: a misspelt `povId` (`povID`) would otherwise turn a
 * revocation of one PoV into closing every socket of the user.
 */
export function revokeArgument (target: unknown): RevokeTarget {
  if (target === null || typeof target !== 'object' || Array.isArray(target)) {
    throw new InvalidArgumentError('revoke takes { userId, povId? }')
  }
  const unknownKeys = Object.keys(target).filter((key) => key !== 'userId' && key !== 'povId')
  if (unknownKeys.length > 0) throw new InvalidArgumentError(`revoke takes { userId, povId? }, not ${unknownKeys.join(', ')}`)
  const { userId, povId } = target as Record<string, unknown>
  return povId === undefined
    ? { userId: userIdArgument(userId) }
    : { userId: userIdArgument(userId), povId: povIdArgument(povId) }
}
