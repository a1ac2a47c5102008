/**
 * Reads one client frame into a protocol message, or into the `error` the client gets back.
 * JSON is parsed with secure-json-parse (a `__proto__` or `constructor.prototype` key is refused, not merged),
 * then dispatched on `type` to a TypeBox validator compiled once per message type.
 */
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import secureJson from 'secure-json-parse'
import { ErrorCode } from '../../types/wire-constants.js'
import type { ClientMessage, ErrorMessage } from '../../types/messages.js'
import {
  AuthMessage, FEATURE_MESSAGE_TYPES, PingMessage, PovId, ReadMessage, ReadsRequest, StatusMessage, SubscribeMessage,
  TypingMessage, UnsubscribeMessage, type Feature
} from '../../types/schemas.js'

export type ParsedFrame =
  | { readonly ok: true, readonly message: ClientMessage }
  | { readonly ok: false, readonly error: ErrorMessage }

const validators: ReadonlyMap<string, TypeCheck<TSchema>> = new Map<string, TypeCheck<TSchema>>([
  ['ping', TypeCompiler.Compile(PingMessage)],
  ['subscribe', TypeCompiler.Compile(SubscribeMessage)],
  ['unsubscribe', TypeCompiler.Compile(UnsubscribeMessage)],
  ['auth', TypeCompiler.Compile(AuthMessage)],
  ['status', TypeCompiler.Compile(StatusMessage)],
  ['typing', TypeCompiler.Compile(TypingMessage)],
  ['read', TypeCompiler.Compile(ReadMessage)],
  ['reads', TypeCompiler.Compile(ReadsRequest)]
])
const checkPovId = TypeCompiler.Compile(PovId)

function invalid (message: string, povId?: unknown): ParsedFrame {
  const error: ErrorMessage = { type: 'error', code: ErrorCode.INVALID_MESSAGE, message }
  // Echo the PoV only when it is one: never reflect arbitrary client input back.
  if (checkPovId.Check(povId)) error.povId = povId
  return { ok: false, error }
}

/**
 * @param data the frame's payload as ws delivers it
 * @param isBinary binary frames are not part of the protocol
 * @param enabledFeatures optional features that are on; messages of the others get `NOT_ENABLED`
 */
export function parseClientFrame (data: Buffer, isBinary: boolean, enabledFeatures: ReadonlySet<Feature> = new Set()): ParsedFrame {
  if (isBinary) return invalid('binary frames are not part of the protocol; send JSON text')
  let value: unknown
  try {
    value = secureJson.parse(data.toString('utf8'), null, { protoAction: 'error', constructorAction: 'error' })
  } catch {
    return invalid('not valid JSON, or a forbidden key such as __proto__')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return invalid('expected a JSON object')
  const { type, povId } = value as { type?: unknown, povId?: unknown }
  if (typeof type !== 'string') return invalid("missing 'type'")
  const validator = validators.get(type)
  if (!validator) return invalid('unknown message type')
  const feature = Object.hasOwn(FEATURE_MESSAGE_TYPES, type) ? FEATURE_MESSAGE_TYPES[type]! : undefined
  if (feature !== undefined && !enabledFeatures.has(feature)) {
    const error: ErrorMessage = { type: 'error', code: ErrorCode.NOT_ENABLED, message: `'${type}' needs the ${feature} option, which is off` }
    if (checkPovId.Check(povId)) error.povId = povId
    return { ok: false, error }
  }
  if (!validator.Check(value)) {
    const first = validator.Errors(value).First()
    const field = first?.path ? `'${first.path.slice(1)}'` : 'message'
    return invalid(`${field}: ${first?.message ?? 'invalid'}`, povId)
  }
  return { ok: true, message: value as ClientMessage }
}
