import type { Static } from '@sinclair/typebox'
import type * as schemas from './schemas.js'

/**
 * Register the activity types of your app to narrow `Activity['type']` from `string` to their union,
 * so that `broadcastActivity({ type: 'typo', … })` fails to compile:
 *
 * ```ts
 * declare module 'fastify-pov-realtime' {
 *   interface ActivityTypes { note: true, status: true, check: true }
 *   interface ActivityActions { created: true, updated: true, failed: true }
 * }
 * ```
 */
export interface ActivityTypes {}
/** Register the activity actions of your app; see {@link ActivityTypes}. */
export interface ActivityActions {}

type KeysOr<Registry, Fallback> = [keyof Registry] extends [never] ? Fallback : Extract<keyof Registry, string>

/** `string`, or the union of the keys an app registered in {@link ActivityTypes}. */
export type ActivityType = KeysOr<ActivityTypes, string>
/** `string`, or the union of the keys an app registered in {@link ActivityActions}. */
export type ActivityAction = KeysOr<ActivityActions, string>

type Narrowed<T> = Omit<T, 'type' | 'action'> & { type: ActivityType, action: ActivityAction }

/** An activity as subscribers receive it (`data` of an `activity` message). */
export type Activity = Narrowed<Static<typeof schemas.Activity>>
/** What `broadcastActivity` accepts: an {@link Activity} whose `createdAt` may be left out. */
export type ActivityInput = Narrowed<Static<typeof schemas.ActivityInput>>
export type { Severity } from './wire-constants.js'
