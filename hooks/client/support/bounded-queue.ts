/**
 * A first-in first-out queue that holds at most `capacity` items: pushing onto a full one drops the oldest.
 * Holds what `sendMessage` is given while the socket is down, so a long outage cannot grow memory without end.
 */
export class BoundedQueue<T> {
  readonly capacity: number
  #items: T[] = []

  /** @param capacity the most items held (0 holds none) */
  constructor (capacity: number) {
    this.capacity = capacity
  }

  get size (): number {
    return this.#items.length
  }

  /** Appends `item`; returns the item dropped to make room, if any. */
  push (item: T): T | undefined {
    if (this.capacity <= 0) return item
    this.#items.push(item)
    return this.#items.length > this.capacity ? this.#items.shift() : undefined
  }

  /** Removes and returns every item, oldest first. */
  drain (): T[] {
    const items = this.#items
    this.#items = []
    return items
  }

  clear (): void {
    this.#items = []
  }
}
