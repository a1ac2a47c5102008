/**
 * A value that readers see only as published snapshots: `set()` may be called many times inside one batch window,
 * readers are told once, with the latest value. The shape `useSyncExternalStore` wants.
 */
export class PublishedValue<T> {
  readonly #schedule: (flush: () => void) => void
  readonly #listeners = new Set<() => void>()
  #latest: T
  #published: T
  #dirty = false

  /**
   * @param initial the first snapshot
   * @param schedule runs `flush` at the end of the current batch
   */
  constructor (initial: T, schedule: (flush: () => void) => void) {
    this.#latest = initial
    this.#published = initial
    this.#schedule = schedule
  }

  set (value: T): void {
    this.#latest = value
    if (this.#dirty) return
    this.#dirty = true
    this.#schedule(this.#publish)
  }

  /** The published snapshot. */
  readonly get = (): T => this.#published

  /** Calls `listener` after each publication; returns the unsubscribe function. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  get listenerCount (): number {
    return this.#listeners.size
  }

  readonly #publish = (): void => {
    this.#dirty = false
    if (Object.is(this.#latest, this.#published)) return
    this.#published = this.#latest
    for (const listener of [...this.#listeners]) listener()
  }
}
