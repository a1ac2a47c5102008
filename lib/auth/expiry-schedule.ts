/**
 * When each socket's token expires, for every socket of the instance on one timer. A timer per socket (a `Timeout`,
 * its closure and, each delay being different, a timer list of its own) cost about 300 bytes per idle connection; here
 * a socket's credential costs one slot of a binary heap ordered by expiry, and the one timer waits for the earliest.
 * Every operation is O(log n); a closed socket leaves the heap at once (nothing of it is kept until its expiry).
 */
import { MAX_TIMER_DELAY } from '../options.js'

/** What the schedule orders: the credential keeps its own place in the heap, so that it can leave it in O(log n). */
export interface Expiring {
  /** Epoch ms. */
  readonly expiresAt: number
  /** Its index in the heap, or -1 when it is not scheduled. Owned by the schedule. */
  heapIndex: number
  /** The expiry passed: called once, after it left the schedule. */
  expire (): void
}

export class ExpirySchedule {
  readonly #heap: Expiring[] = []
  #timer: NodeJS.Timeout | undefined
  /** The expiry the timer was set for (Infinity: no timer). */
  #timerFor = Infinity

  get size (): number {
    return this.#heap.length
  }

  /** Schedules `item` (again, at its current `expiresAt`, if it was already). */
  schedule (item: Expiring): void {
    if (item.heapIndex >= 0) this.#take(item)
    item.heapIndex = this.#heap.length
    this.#heap.push(item)
    this.#up(item.heapIndex)
    this.#arm()
  }

  /** Takes `item` off the schedule; nothing when it is not on it. */
  cancel (item: Expiring): void {
    if (item.heapIndex < 0) return
    this.#take(item)
    this.#arm()
  }

  /** Stops the timer and forgets everything (the instance is closing). */
  clear (): void {
    for (const item of this.#heap) item.heapIndex = -1
    this.#heap.length = 0
    this.#arm()
  }

  #take (item: Expiring): void {
    const heap = this.#heap
    const index = item.heapIndex
    const last = heap.pop()!
    item.heapIndex = -1
    if (last === item) return
    heap[index] = last
    last.heapIndex = index
    this.#down(index)
    this.#up(last.heapIndex)
  }

  /** (Re)sets the timer for the earliest expiry, unless it is set for it already. */
  #arm (): void {
    const first = this.#heap[0]
    const at = first ? first.expiresAt : Infinity
    if (at === this.#timerFor) return
    clearTimeout(this.#timer)
    this.#timerFor = at
    this.#timer = first
      ? setTimeout(() => this.#fire(), Math.min(MAX_TIMER_DELAY, Math.max(0, at - Date.now()))).unref()
      : undefined
  }

  #fire (): void {
    this.#timerFor = Infinity
    this.#timer = undefined
    const now = Date.now()
    const due: Expiring[] = []
    while (this.#heap.length > 0 && this.#heap[0]!.expiresAt <= now) {
      const first = this.#heap[0]!
      this.#take(first)
      due.push(first)
    }
    this.#arm()
    for (const item of due) item.expire()
  }

  #up (index: number): void {
    const heap = this.#heap
    const item = heap[index]!
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]!
      if (parent.expiresAt <= item.expiresAt) break
      heap[index] = parent
      parent.heapIndex = index
      index = parentIndex
    }
    heap[index] = item
    item.heapIndex = index
  }

  #down (index: number): void {
    const heap = this.#heap
    const item = heap[index]!
    const half = heap.length >> 1
    while (index < half) {
      let childIndex = 2 * index + 1
      const right = childIndex + 1
      if (right < heap.length && heap[right]!.expiresAt < heap[childIndex]!.expiresAt) childIndex = right
      const child = heap[childIndex]!
      if (item.expiresAt <= child.expiresAt) break
      heap[index] = child
      child.heapIndex = index
      index = childIndex
    }
    heap[index] = item
    item.heapIndex = index
  }
}
