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
