/**
 * The client's offline storage: per PoV, the last cursor, this user's read mark, a `markRead` not sent yet, and the
 * newest activities shown, so that a reload shows the feed at once and resumes after the cursor (no gap, no
 * duplicate), and a mark made offline is sent once the PoV is subscribed again.
 *
 * Kept in `sessionStorage` by default (it outlives a reload, not the tab: activity text does not stay on a shared
 * computer), `localStorage` on request, or a storage of the app's. One key per user and socket URL, so another user
 * signing in on the same browser reads nothing of the first; `clearPersistedRealtimeState()` removes every key on
 * sign-out. Bounded: at most `MAX_PERSISTED_POVS` PoVs and `maxBytes` per key; when space runs short, activities go
 * first (the least recently saved PoVs' first), cursors and marks last. A storage that is missing, refuses access or is
 * full never breaks the client: it keeps the state in memory instead.
 */
import type { Activity } from '../../../types/activity.js'
import type { PageDocument } from '../presence/idle-detector.js'
import type { HeldActivity } from '../activity-list.js'
import { setNewest } from '../support/set-newest.js'
import type { Timers } from '../connection/timers.js'

/** The part of the Web Storage API the client uses (`sessionStorage`, `localStorage`, or an app's own). */
export interface StorageLike {
  readonly length: number
  key (index: number): string | null
  getItem (key: string): string | null
  setItem (key: string, value: string): void
  removeItem (key: string): void
}

/** Where the offline state goes: the page's session or local storage, a storage of the app's, or nowhere. */
export type PersistOption = 'session' | 'local' | false | StorageLike

/** What is kept of one PoV. */
export interface PersistedPov {
  /** The last cursor seen: the next subscription resumes after it. */
  readonly cursor: string | undefined
  readonly readCursor: string | null
  /** A `markRead` the server has not been sent yet. */
  readonly pendingRead: string | undefined
  /** The newest activities shown, oldest first. */
  readonly activities: readonly HeldActivity[]
}

/** Every key the client writes starts with this. */
export const PERSIST_KEY_PREFIX = 'pov-realtime:v1:'
/** The most PoVs kept per user; the least recently saved goes first. */
export const MAX_PERSISTED_POVS = 50
/** ms a change waits before it is written (a burst of activities is written once); a hidden page writes at once. */
export const PERSIST_WRITE_DELAY = 1000

/** Bumped by `clearPersistedRealtimeState()`: every instance drops what it holds in memory when it next looks. */
let clearings = 0

/**
 * Removes everything the realtime client stored in this browser, for every user: call it on sign-out. It also makes
 * every client of the page forget what it kept in memory for a reload.
 * @param [storages] storages the app gave as `persist`, besides the page's session and local storage
 */
export function clearPersistedRealtimeState (...storages: StorageLike[]): void {
  clearings++
  for (const storage of [pageStorage('session'), pageStorage('local'), ...storages]) {
    if (!storage) continue
    try {
      const keys: string[] = []
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i)
        if (key?.startsWith(PERSIST_KEY_PREFIX)) keys.push(key)
      }
      for (const key of keys) storage.removeItem(key)
    } catch {
      // A storage that refuses access holds nothing of ours either.
    }
  }
}

/** The page's storage, or `undefined` outside a browser or where access is refused (a `SecurityError`). */
function pageStorage (kind: 'session' | 'local'): StorageLike | undefined {
  try {
    return (kind === 'session' ? globalThis.sessionStorage : globalThis.localStorage) ?? undefined
  } catch {
    return undefined
  }
}

export interface PersistedStateOptions {
  persist: Exclude<PersistOption, false>
  /** Keeps the states of two servers apart (the socket URL option). */
  scope: string
  /** The most one user's key may take, counted as browsers count: 2 bytes per UTF-16 code unit. */
  maxBytes: number
  /** The most activities kept per PoV. */
  maxActivities: number
  timers: Timers
  /** The page, whose hiding writes at once (the last moment a reload or a closing tab surely gives). */
  document: () => PageDocument | null | undefined
}

export class PersistedState {
  readonly #options: PersistedStateOptions
  #userId: string | undefined
  #key = ''
  /** `undefined`: memory only (no storage, or it failed). */
  #storage: StorageLike | undefined
  /** Most recently saved last. */
  readonly #povs = new Map<string, PersistedPov>()
  #dirty = false
  #timer: unknown
  #document: PageDocument | null | undefined
  #clearings = clearings

  constructor (options: PersistedStateOptions) {
    this.#options = options
  }

  /** Loads `userId`'s state (what another user's held in memory is dropped) and starts saving on page hide. */
  open (userId: string): void {
    this.#checkCleared()
    if (userId !== this.#userId) {
      this.flush()
      this.#povs.clear()
      this.#userId = userId
      this.#key = `${PERSIST_KEY_PREFIX}${encodeURIComponent(this.#options.scope)}:${encodeURIComponent(userId)}`
      const { persist } = this.#options
      this.#storage = typeof persist === 'string' ? pageStorage(persist) : persist
      this.#load()
    }
    if (this.#document === undefined) {
      this.#document = this.#options.document() ?? null
      this.#document?.addEventListener('visibilitychange', this.#onVisibility)
    }
  }

  /** Writes what is pending and stops listening to the page; what is held stays for the next `open()`. */
  close (): void {
    this.flush()
    this.#document?.removeEventListener('visibilitychange', this.#onVisibility)
    this.#document = undefined
  }

  /** The user whose state is open. */
  get userId (): string | undefined {
    return this.#userId
  }

  get (povId: string): PersistedPov | undefined {
    this.#checkCleared()
    return this.#userId === undefined ? undefined : this.#povs.get(povId)
  }

  /** Records `povId`'s state, written after `PERSIST_WRITE_DELAY` ms (at once with `flush()`). */
  set (povId: string, pov: PersistedPov): void {
    this.#checkCleared()
    if (this.#userId === undefined) return
    const { maxActivities } = this.#options
    const kept = pov.activities.length > maxActivities ? { ...pov, activities: pov.activities.slice(-maxActivities) } : pov
    setNewest(this.#povs, povId, kept, MAX_PERSISTED_POVS)
    this.#dirty = true
    if (this.#storage && this.#timer === undefined) {
      this.#timer = this.#options.timers.setTimeout(() => {
        this.#timer = undefined
        this.flush()
      }, PERSIST_WRITE_DELAY)
    }
  }

  /** Writes now. */
  flush (): void {
    this.#checkCleared()
    if (this.#timer !== undefined) {
      this.#options.timers.clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (!this.#dirty || !this.#storage) return
    this.#dirty = false
    const storage = this.#storage
    try {
      storage.setItem(this.#key, this.#serialize(true))
    } catch {
      try {
        // Full (or refused): the cursors and marks are what matter most, and take little room.
        storage.setItem(this.#key, this.#serialize(false))
      } catch {
        this.#storage = undefined
      }
    }
  }

  readonly #onVisibility = (): void => {
    if (this.#document?.visibilityState === 'hidden') this.flush()
  }

  #checkCleared (): void {
    if (this.#clearings === clearings) return
    this.#clearings = clearings
    if (this.#timer !== undefined) this.#options.timers.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#povs.clear()
    this.#dirty = false
    this.#userId = undefined
  }

  #load (): void {
    let text: string | null = null
    try {
      text = this.#storage?.getItem(this.#key) ?? null
    } catch {
      this.#storage = undefined
    }
    if (text === null) return
    for (const [povId, pov] of parsePersisted(text, this.#options.maxActivities)) this.#povs.set(povId, pov)
  }

  /**
   * The JSON for storage, at most `maxBytes`: first every PoV's cursors and marks (they make the next resume gapless and
   * carry unsent marks), most recently saved first, then activities, most recently saved PoV first, halved to fit.
   */
  #serialize (withActivities: boolean): string {
    const head = '{"povs":{'
    const tail = '}}'
    const budget = Math.floor(this.#options.maxBytes / 2) - head.length - tail.length
    const newestFirst = [...this.#povs].reverse()
    const parts = new Map<string, string>()
    let used = 0
    for (const [povId, pov] of newestFirst) {
      const part = entryJson(povId, pov, 0)
      if (used + part.length + 1 > budget) continue
      parts.set(povId, part)
      used += part.length + 1
    }
    for (const [povId, pov] of withActivities ? newestFirst : []) {
      const bare = parts.get(povId)
      if (bare === undefined) continue
      for (let count = pov.activities.length; count > 0; count = Math.floor(count / 2)) {
        const part = entryJson(povId, pov, count)
        if (used - bare.length + part.length > budget) continue
        parts.set(povId, part)
        used += part.length - bare.length
        break
      }
    }
    return head + [...this.#povs.keys()].filter((povId) => parts.has(povId)).map((povId) => parts.get(povId)).join(',') + tail
  }
}

function entryJson (povId: string, pov: PersistedPov, activityCount: number): string {
  const activities = activityCount > 0 ? pov.activities.slice(-activityCount) : []
  return `${JSON.stringify(povId)}:${JSON.stringify({ ...pov, activities })}`
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** What a stored text holds, checked field by field: anything malformed (an old version, a tampered key) is skipped. */
function parsePersisted (text: string, maxActivities: number): Array<[string, PersistedPov]> {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return []
  }
  if (!isObject(data) || !isObject(data.povs)) return []
  const povs: Array<[string, PersistedPov]> = []
  for (const [povId, raw] of Object.entries(data.povs).slice(-MAX_PERSISTED_POVS)) {
    if (!isObject(raw)) continue
    const activities = Array.isArray(raw.activities)
      ? raw.activities.filter((held): held is HeldActivity => isObject(held) && typeof held.cursor === 'string' &&
        isObject(held.activity) && typeof held.activity.id === 'string' && held.activity.povId === povId)
      : []
    povs.push([povId, {
      cursor: typeof raw.cursor === 'string' ? raw.cursor : undefined,
      readCursor: typeof raw.readCursor === 'string' ? raw.readCursor : null,
      pendingRead: typeof raw.pendingRead === 'string' ? raw.pendingRead : undefined,
      activities: activities.slice(-maxActivities).map((held) => ({ cursor: held.cursor, activity: held.activity as Activity }))
    }])
  }
  return povs
}
