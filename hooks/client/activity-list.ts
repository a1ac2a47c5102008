/**
 * One PoV's activities as the components see them: the server's, deduplicated by `id`, oldest first, at most
 * `capacity` of them, followed by the app's optimistic entries that the server has not confirmed yet.
 *
 * Cursors are opaque, so the only order the client knows between two of them is the order their activities arrived
 * in: the list keeps each server activity's cursor, and read marks are placed by their position here.
 *
 * Readers get an immutable snapshot (for `useSyncExternalStore`); changes are announced through the batch scheduler,
 * so a burst of activities produces one new snapshot per batch window, not one per activity.
 */
import type { Activity, ActivityInput } from '../../types/activity.js'
import type { ErrorMessage } from '../../types/messages.js'
import type { Timers } from './connection/timers.js'

export interface ActivitiesSnapshot {
  /** The server's activities in the order they arrived, then the unconfirmed optimistic ones; oldest first. */
  readonly activities: readonly Activity[]
  /** Ids of the entries of `activities` that are optimistic and not confirmed yet. */
  readonly pendingIds: ReadonlySet<string>
  /** The server's last refusal concerning this PoV (such as `FORBIDDEN`); `null` once a subscription succeeds. */
  readonly error: ErrorMessage | null
}

/** The snapshot of a PoV nobody watches. */
export const EMPTY_ACTIVITIES: ActivitiesSnapshot = Object.freeze({
  activities: Object.freeze([]) as readonly Activity[],
  pendingIds: new Set<string>() as ReadonlySet<string>,
  error: null
})

export interface ActivityListOptions {
  /** Server activities kept (the oldest go first); also the most optimistic entries held at once. */
  capacity: number
  timers: Timers
  /** Announces a change: runs `flush` at the end of the current batch. */
  schedule: (flush: () => void) => void
}

interface Optimistic {
  activity: Activity
  timer: unknown
}

/** A server activity with the cursor it came with. */
export interface HeldActivity {
  readonly cursor: string
  readonly activity: Activity
}

export class ActivityList {
  readonly #options: ActivityListOptions
  #confirmed: HeldActivity[] = []
  readonly #confirmedIds = new Set<string>()
  readonly #optimistic = new Map<string, Optimistic>()
  #error: ErrorMessage | null = null
  #snapshot: ActivitiesSnapshot = EMPTY_ACTIVITIES
  #dirty = false
  readonly #listeners = new Set<() => void>()

  constructor (options: ActivityListOptions) {
    this.#options = options
  }

  /** Adds an activity from the server, with its cursor; false (and nothing changes) when its `id` is already held. */
  add (activity: Activity, cursor: string): boolean {
    if (this.#confirmedIds.has(activity.id)) return false
    this.#confirmed.push({ cursor, activity })
    this.#confirmedIds.add(activity.id)
    if (this.#confirmed.length > this.#options.capacity) this.#confirmedIds.delete(this.#confirmed.shift()!.activity.id)
    // The server's copy replaces the optimistic one: same id, shown once.
    this.#forgetOptimistic(activity.id)
    this.#changed()
    return true
  }

  /**
   * Shows `input` at once, marked pending, until the server's copy (same `id`) arrives, `removeOptimistic(id)` is
   * called, or `timeoutMs` passes. Adding an id the server already confirmed changes nothing.
   * @param input the activity; `createdAt` defaults to now
   * @param timeoutMs how long it may stay unconfirmed (0 or Infinity: until confirmed or removed)
   */
  addOptimistic (input: ActivityInput, timeoutMs: number): void {
    if (this.#confirmedIds.has(input.id)) return
    this.#forgetOptimistic(input.id)
    const activity = { ...input, createdAt: input.createdAt ?? new Date(this.#options.timers.now()).toISOString() } as Activity
    const timer = timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? this.#options.timers.setTimeout(() => this.removeOptimistic(input.id), timeoutMs)
      : undefined
    this.#optimistic.set(input.id, { activity, timer })
    if (this.#optimistic.size > this.#options.capacity) this.#forgetOptimistic(this.#optimistic.keys().next().value!)
    this.#changed()
  }

  /** The newest server activity's cursor, if any is held. */
  get latestCursor (): string | undefined {
    return this.#confirmed.at(-1)?.cursor
  }

  /** Where the activity with `cursor` stands among the held server activities (0 = oldest), or -1 if not held. */
  positionOf (cursor: string): number {
    return this.#confirmed.findLastIndex((held) => held.cursor === cursor)
  }

  /** Where the activity with `id` stands among the held server activities, or -1 if not held. */
  positionOfId (id: string): number {
    return this.#confirmedIds.has(id) ? this.#confirmed.findLastIndex((held) => held.activity.id === id) : -1
  }

  /** How many held server activities came after the one with `cursor`; `undefined` when it is not held. */
  countAfter (cursor: string): number | undefined {
    const position = this.positionOf(cursor)
    return position === -1 ? undefined : this.#confirmed.length - 1 - position
  }

  /** The newest `limit` server activities with their cursors, oldest first. */
  held (limit: number): HeldActivity[] {
    return limit > 0 ? this.#confirmed.slice(-limit) : []
  }

  /** Drops an unconfirmed optimistic entry (the app's post failed); false when there is none with that id. */
  removeOptimistic (id: string): boolean {
    if (!this.#forgetOptimistic(id)) return false
    this.#changed()
    return true
  }

  /** Records (or, with `null`, clears) the server's refusal concerning this PoV. */
  setError (error: ErrorMessage | null): void {
    if (error === this.#error) return
    this.#error = error
    this.#changed()
  }

  /** Forgets every activity, optimistic entry and error. */
  clear (): void {
    for (const id of [...this.#optimistic.keys()]) this.#forgetOptimistic(id)
    this.#confirmed = []
    this.#confirmedIds.clear()
    this.#error = null
    this.#changed()
  }

  /** The current snapshot: the same object until the next announced change. */
  readonly getSnapshot = (): ActivitiesSnapshot => this.#snapshot

  /** Calls `listener` after each announced change; returns the unsubscribe function. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  get listenerCount (): number {
    return this.#listeners.size
  }

  /** Stops the optimistic timers; the list is not used again. */
  dispose (): void {
    for (const { timer } of this.#optimistic.values()) if (timer !== undefined) this.#options.timers.clearTimeout(timer)
    this.#optimistic.clear()
    this.#listeners.clear()
  }

  #forgetOptimistic (id: string): boolean {
    const entry = this.#optimistic.get(id)
    if (!entry) return false
    if (entry.timer !== undefined) this.#options.timers.clearTimeout(entry.timer)
    this.#optimistic.delete(id)
    return true
  }

  #changed (): void {
    if (this.#dirty) return
    this.#dirty = true
    this.#options.schedule(this.#publish)
  }

  readonly #publish = (): void => {
    this.#dirty = false
    const optimistic = [...this.#optimistic.values()].map((entry) => entry.activity)
    this.#snapshot = Object.freeze({
      activities: Object.freeze([...this.#confirmed.map((held) => held.activity), ...optimistic]),
      pendingIds: new Set(this.#optimistic.keys()),
      error: this.#error
    })
    for (const listener of [...this.#listeners]) listener()
  }
}
