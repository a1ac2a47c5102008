/**
 * Turns what a route handler passes to `broadcastActivity` into the JSON every subscriber receives:
 * checked against the `ActivityInput` schema (compiled once), copied field by field in a fixed order
 * (so getters, prototypes and unknown columns never reach the wire), stamped with `createdAt`, and bounded in size.
 */
import type { Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { InvalidActivityError } from './errors.js'
import { Activity, ActivityInput } from '../types/schemas.js'

const checkActivity = TypeCompiler.Compile(ActivityInput)

/** The largest serialized activity; metadata is meant to be a small object of the app's own ids and flags. */
export const MAX_ACTIVITY_BYTES = 64 * 1024

export interface SerializedActivity {
  readonly povId: string
  readonly json: string
}

function describeFirstError (input: unknown): string {
  const error = checkActivity.Errors(input).First()
  if (!error) return 'not an activity'
  const field = error.path ? `'${error.path.slice(1).replace(/\//g, '.')}'` : 'activity'
  return `${field}: ${error.message}`
}

/** Validates and serializes an activity; throws `POV_REALTIME_INVALID_ACTIVITY` with the first problem found. */
export function serializeActivity (input: unknown): SerializedActivity {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidActivityError('expected an object')
  }
  if (!checkActivity.Check(input)) throw new InvalidActivityError(describeFirstError(input))
  if (input.metadata !== undefined && (input.metadata === null || Array.isArray(input.metadata))) {
    throw new InvalidActivityError("'metadata': expected a plain object")
  }
  // The schema's own type, not the app-narrowed one: this module must compile whatever types an app registers.
  const activity: Static<typeof Activity> = {
    id: input.id,
    type: input.type,
    action: input.action,
    povId: input.povId,
    userId: input.userId,
    title: input.title,
    message: input.message,
    severity: input.severity,
    actionUrl: input.actionUrl,
    metadata: input.metadata,
    createdAt: input.createdAt ?? new Date().toISOString()
  }
  let json: string
  try {
    json = JSON.stringify(activity)
  } catch (err) {
    throw new InvalidActivityError(`'metadata' is not JSON-serializable (${(err as Error).message})`)
  }
  if (Buffer.byteLength(json) > MAX_ACTIVITY_BYTES) {
    throw new InvalidActivityError(`larger than ${MAX_ACTIVITY_BYTES} bytes once serialized; keep metadata small`)
  }
  return { povId: activity.povId, json }
}
